"""
daphne with Python's cyclic garbage collector tuned: an experiment for
docs/benchmarks.md, not part of the project's runtime.

    BENCH_OURS_CMD="REDIS_URL= DATABASE_URL=sqlite:////tmp/bench.sqlite3 \
      REALTIME_PUBLIC_CHANNELS=bench .venv/bin/python bench/daphne_gc.py \
      -b 127.0.0.1 -p {port} paychain.asgi:application" \
      .venv/bin/python bench/bench_fanout.py spawn --only ours --ours-name ours-gc ...

Imports the application first, then moves everything that exists after start-up
into the permanent generation (gc.freeze) and raises the generation-0 threshold
(BENCH_GC_THRESHOLD, default 50000 allocations instead of 700), then hands over
to daphne's own command line. A profile of daphne fanning out to 10,000 sockets
spent about a third of its CPU in gc_collect_main.
"""

import gc
import os
import sys

sys.path.insert(0, os.getcwd())

import paychain.asgi  # noqa: E402,F401  (the application, set up before freezing)

gc.collect()
gc.freeze()
gc.set_threshold(int(os.environ.get("BENCH_GC_THRESHOLD", "50000")), 20, 20)

from daphne.cli import CommandLineInterface  # noqa: E402

sys.argv[0] = "daphne"
CommandLineInterface.entrypoint()
