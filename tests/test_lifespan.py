"""At shutdown (uvicorn's lifespan), the node stops and its Redis clients close."""

from __future__ import annotations

from paychain.asgi import application
from realtime import redis_clients
from realtime.node import get_node, stop_node


async def test_lifespan_shutdown_stops_the_node_and_closes_its_redis_clients(settings, redis_url):
    settings.REDIS_URLS = [redis_url]
    node = await get_node()
    clients = redis_clients.clients()
    assert await clients.primary.ping()
    inbox = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return inbox.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    await application({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]
    # The loop's node and clients were stopped and forgotten: the next caller gets new ones.
    assert redis_clients.clients() is not clients
    assert (await get_node()) is not node
    await stop_node()
