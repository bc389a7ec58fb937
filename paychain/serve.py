"""
The production launcher:

    python -m paychain.serve --host 0.0.0.0 --port 8000 [--workers N] [--log-level L]

starts uvicorn (the cheaper server in docs/benchmarks.md) serving
`paychain.asgi:application` with `realtime.servers.uvicorn_ws`'s WebSocket
protocol, per-message deflate off, lifespan on, uvloop and httptools with
`realtime.servers.uvicorn_http`'s limits (a request head must arrive within 10
s and stay under 64 KiB); with `--workers N`, N such processes on one port.
Neither server logs query strings (a socket's `?token=`): see
`realtime.servers.accesslog`. `--server daphne` starts daphne
with `realtime.servers.daphne_server`'s server instead (one process). Either
way every WebSocket scope carries the transport extension of
`realtime.servers.extension`. `--app` serves another ASGI application the same
way (the tests use it).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

APPLICATION = "paychain.asgi:application"
LOG_LEVELS = ["critical", "error", "warning", "info", "debug", "trace"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m paychain.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to bind (default %(default)s)")
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument(
        "--workers", type=int, default=1, help="uvicorn processes (default 1; daphne: 1 only)"
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS, default="info")
    parser.add_argument("--app", default=APPLICATION, help="ASGI application (default %(default)s)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.server == "daphne" and args.workers != 1:
        parser.error("daphne runs one process: run several behind a balancer instead")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "paychain.settings")
    # Imported here: daphne's module installs Twisted's reactor on import.
    if args.server == "daphne":
        from realtime.servers import daphne_server

        daphne_server.serve(args.app, host=args.host, port=args.port, log_level=args.log_level)
    else:
        from realtime.servers import uvicorn_ws

        uvicorn_ws.serve(
            args.app,
            host=args.host,
            port=args.port,
            workers=args.workers,
            log_level=args.log_level,
        )


if __name__ == "__main__":
    main()
