#!/usr/bin/env bash
# The fan-out benchmarks of docs/benchmarks.md, in one command.
#
#   bench/run_benchmarks.sh [OUTDIR]          (default OUTDIR: /tmp/bench-out)
#
# Starts fresh servers (ours: daphne or uvicorn, see OURS_SERVER; the seed peer:
# uvicorn) on free ports for every run, alternates them for 3 rounds, stops them
# afterwards. Each scenario writes OUTDIR/<name>.txt (tables, one `RESULT {json}`
# line per run and a final `COMPARE {json}` line).
#
# Environment:
#   OURS_DIR        working directory of ours (default: this checkout). To measure
#                   a commit rather than a working tree in flux:
#                     git archive HEAD | tar -x -C /tmp/ours-head; OURS_DIR=/tmp/ours-head
#                   The binaries are always this checkout's .venv (absolute paths),
#                   the application code is OURS_DIR's.
#   OURS_SERVER     which ASGI server runs ours (default: daphne); the commands are
#                   OURS_SERVERS in bench_fanout.py, all from this checkout's .venv:
#                     daphne                  daphne
#                     uvicorn                 uvicorn --ws websockets-sansio --ws-per-message-deflate false
#                                             (the recommended production configuration)
#                     uvicorn-auto            uvicorn's defaults (--ws auto = websockets-sansio,
#                                             permessage-deflate accepted)
#                     uvicorn-legacy          uvicorn --ws websockets --ws-per-message-deflate false
#                                             (websockets' legacy implementation, deprecated in uvicorn)
#                     uvicorn-legacy-deflate  uvicorn --ws websockets
#                     uvicorn-wsproto         uvicorn --ws wsproto --ws-per-message-deflate false
#                                             (needs `.venv/bin/pip install wsproto`)
#                   uvicorn ones add --lifespan off --log-level warning; every one runs with
#                   REDIS_URL= (in-memory layer) DATABASE_URL=sqlite:////tmp/bench.sqlite3
#                   REALTIME_PUBLIC_CHANNELS=bench DJANGO_DEBUG=true. E.g.
#                     OURS_SERVER=uvicorn OURS_DIR=/tmp/ours-head bench/run_benchmarks.sh /tmp/bench-uv
#   BENCH_OURS_CMD  command for ours, {port} substituted; overrides OURS_SERVER
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
OURS_SERVER="${OURS_SERVER:-daphne}"
export OURS_SERVER
case "$OURS_SERVER" in
daphne | uvicorn | uvicorn-auto | uvicorn-legacy | uvicorn-legacy-deflate | uvicorn-wsproto) ;;
*) echo "unknown OURS_SERVER=$OURS_SERVER (daphne, uvicorn, uvicorn-auto, uvicorn-legacy, uvicorn-legacy-deflate, uvicorn-wsproto)" >&2; exit 2 ;;
esac
if [ -n "${BENCH_OURS_CMD:-}" ]; then OURS_NAME="ours"; else OURS_NAME="ours-$OURS_SERVER"; fi
PY="$REPO/.venv/bin/python"
BENCH=("$PY" "$HERE/bench_fanout.py")
mkdir -p "$OUT"
echo "ours: ${BENCH_OURS_CMD:-OURS_SERVER=$OURS_SERVER} (cwd $OURS_DIR)"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

run() {
    local name="$1"
    shift
    echo "=== $name: $*" | tee "$OUT/$name.txt"
    local t0=$SECONDS
    "${BENCH[@]}" "$@" --ours-dir "$OURS_DIR" --ours-name "$OURS_NAME" 2>&1 | tee -a "$OUT/$name.txt" | grep -v '^RESULT\|^COMPARE' || true
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
