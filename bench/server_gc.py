"""
Ours under daphne or uvicorn with the cyclic garbage collector set back to
Python's defaults (or any other thresholds): an experiment for
docs/benchmarks.md, not part of the project's runtime.

Since cad55b9 the application tunes the collector itself when imported
(realtime.startup.tune_process: gc.freeze() and thresholds (50000, 20, 20)).
This wrapper imports the application first (so that tuning happens), then
undoes it (gc.unfreeze(); BENCH_GC_THRESHOLD, default "700,10,10") and hands
over to the server's own command line, in the same process:

    BENCH_OURS_CMD="REDIS_URL= DATABASE_URL=sqlite:////tmp/bench.sqlite3 \
      REALTIME_PUBLIC_CHANNELS=bench DJANGO_DEBUG=true \
      /work/main/.venv/bin/python /work/main/bench/server_gc.py uvicorn \
      paychain.asgi:application --host 127.0.0.1 --port {port} --ws websockets --lifespan off" \
      .venv/bin/python bench/bench_fanout.py spawn --only ours --ours-name ours-uv-gcdefault ...

The first argument is `daphne` or `uvicorn`; the rest is that server's
command line. The application is imported from the working directory (as
both servers do), so --ours-dir snapshots work.
"""

import gc
import os
import sys

sys.path.insert(0, os.getcwd())

import paychain.asgi  # noqa: E402,F401  (tunes the collector on import)

gc.unfreeze()
gc.set_threshold(*(int(x) for x in os.environ.get("BENCH_GC_THRESHOLD", "700,10,10").split(",")))
gc.collect()

server, sys.argv = sys.argv[1], [sys.argv[1], *sys.argv[2:]]
if server == "daphne":
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()
elif server == "uvicorn":
    from uvicorn.main import main

    main()
else:
    sys.exit("first argument: daphne or uvicorn")
