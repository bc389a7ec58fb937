"""ASGI lifespan: at shutdown, stop this process' node (its background tasks)
and close its Redis clients. Servers that send no lifespan events (daphne)
end the process without it; nothing is lost, connections just close."""

from __future__ import annotations

import logging
from typing import Any

from .node import stop_node

logger = logging.getLogger(__name__)


def with_lifespan(application: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] != "lifespan":
            return await application(scope, receive, send)
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await stop_node()
                except Exception as exc:
                    logger.warning("Stopping the node failed: %s", exc)
                await send({"type": "lifespan.shutdown.complete"})
                return None

    return app
