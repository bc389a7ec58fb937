#!/usr/bin/env bash
# Every figure of docs/benchmarks.md in one command:
#
#   bench/run.sh            the full run (3 rounds; see docs/benchmarks.md "How to reproduce")
#   bench/run.sh --quick    small sizes, 1 round: a few minutes
#   bench/run.sh --help     the options of `python -m bench`
#
# Installs what the run needs first: the project's .venv with requirements-bench.txt
# (matplotlib), wrk (apt), the seed peer's venv and bench/node_ws's node_modules
# (those two by python -m bench itself). Needs Redis on 127.0.0.1:6379 and Node.js.
set -euo pipefail
cd "$(dirname "$0")/.."
bin/setup requirements-bench.txt
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
  else echo "wrk is missing: sudo apt-get install -y wrk" >&2; exit 1; fi
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exec .venv/bin/python -m bench "$@"
