"""
The fan-out benchmark of docs/benchmarks.md, as a tool: `python -m bench`
(or bench/run.sh, which installs what it needs first).

    procfs.py        CPU time and resident memory from /proc
    client.py        the sockets, the publisher and the accounting of one run
    servers.py       the servers measured, each started fresh on a free port
    scenarios.py     the scenarios and the runner (rounds, alternating servers)
    publish_rate.py  POST /broadcast under wrk
    report.py        the results file, the table and the plot
    node_ws/         the Node.js `ws` peer
"""
