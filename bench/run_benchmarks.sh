#!/usr/bin/env bash
# The fan-out benchmarks of docs/benchmarks.md, in one command.
#
#   bench/run_benchmarks.sh [OUTDIR]          (default OUTDIR: /tmp/bench-out)
#
# Starts fresh servers (ours: daphne; the seed peer: uvicorn) on free ports for
# every run, alternates them for 3 rounds, stops them afterwards. Each scenario
# writes OUTDIR/<name>.txt (tables, one `RESULT {json}` line per run and a final
# `COMPARE {json}` line).
#
# Environment:
#   OURS_DIR        working directory of ours (default: this checkout). To measure
#                   a commit rather than a working tree in flux:
#                     git archive HEAD | tar -x -C /tmp/ours-head; OURS_DIR=/tmp/ours-head
#   BENCH_OURS_CMD  command for ours, {port} substituted (default: daphne, see
#                   bench_fanout.py default_ours_cmd)
#   BENCH_PEER_CMD  command for the peer (default: ~/.venvs/peer/bin/uvicorn seed_fastapi:app)
#   ROUNDS          rounds per scenario (default 3)
#   SCENARIOS       subset to run, e.g. "a b" (default: "a b c1 c5 d")
#
# Prerequisites: the peer's venv (see /work/shared/peers/README.md):
#   python -m venv ~/.venvs/peer && ~/.venvs/peer/bin/pip install fastapi 'uvicorn[standard]'
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
OUT="${1:-/tmp/bench-out}"
ROUNDS="${ROUNDS:-3}"
OURS_DIR="${OURS_DIR:-$REPO}"
SCENARIOS="${SCENARIOS:-a b c1 c5 d}"
PY="$REPO/.venv/bin/python"
BENCH=("$PY" "$HERE/bench_fanout.py")
mkdir -p "$OUT"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

run() {
    local name="$1"
    shift
    echo "=== $name: $*" | tee "$OUT/$name.txt"
    local t0=$SECONDS
    "${BENCH[@]}" "$@" --ours-dir "$OURS_DIR" 2>&1 | tee -a "$OUT/$name.txt" | grep -v '^RESULT\|^COMPARE' || true
    echo "=== $name took $((SECONDS - t0)) s" | tee -a "$OUT/$name.txt"
}

for s in $SCENARIOS; do
    case "$s" in
    a) # 1,000 sockets, 100 broadcasts back to back: throughput and CPU per delivery
        run a spawn --sockets 1000 --messages 100 --rate 0 --rounds "$ROUNDS" ;;
    b) # 1,000 sockets, 10 broadcasts/s for 10 s: latency at a steady rate
        run b spawn --sockets 1000 --messages 100 --rate 10 --rounds "$ROUNDS" ;;
    c1) # idle memory per socket, 1,000 sockets
        run c1 spawn --sockets 1000 --messages 0 --settle 2 --rounds "$ROUNDS" ;;
    c5) # idle memory per socket, 5,000 sockets
        run c5 spawn --sockets 5000 --messages 0 --settle 2 --rounds "$ROUNDS" ;;
    d) # 10,000 sockets, 20 broadcasts back to back: nothing lost/duplicated/reordered
        run d spawn --sockets 10000 --messages 20 --rate 0 --rounds 1 --timeout 60 ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
    esac
done
