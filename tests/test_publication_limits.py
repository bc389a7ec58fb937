"""The size limit of a publication: REALTIME["MAX_PUBLICATION_BYTES"] of `data`
as JSON. Over it, POST /broadcast answers 413 `payload_too_large` and nothing
is published (no offset is spent); up to it, what is accepted is delivered."""

from __future__ import annotations

import httpx
import pytest

from paychain.asgi import application
from realtime.broker import get_broker
from realtime.checks import realtime_limit_checks
from realtime.conf import DEFAULTS
from realtime.services import PublicationTooLargeError, apublish

from .wsclient import connect, recv_json, subscribe

KEY = "service-key-one"
LIMIT = DEFAULTS["MAX_PUBLICATION_BYTES"]
# `{"s":"` + text + `"}`: the JSON of data {"s": text} is 8 bytes more than text.
WRAPPING = len('{"s":""}')


def data_of_size(size: int, char: str = "a") -> dict[str, str]:
    """{"s": ...} whose JSON is `size` bytes in UTF-8 (char: 1 or 2 bytes)."""
    width = len(char.encode())
    body = size - WRAPPING
    return {"s": char * (body // width) + "a" * (body % width)}


@pytest.fixture(autouse=True)
def _keys(settings):
    settings.REALTIME = {**settings.REALTIME, "BROADCAST_API_KEYS": [KEY]}


async def post(body) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://localhost"
    ) as client:
        return await client.post(
            "/broadcast", json=body, headers={"Authorization": f"Api-Key {KEY}"}
        )


def test_the_default_limit_is_64_kib():
    assert LIMIT == 64 * 1024


async def test_data_over_the_limit_is_413_payload_too_large_and_spends_no_offset():
    first = await post({"type": "x", "channel": "limits-a", "data": {"n": 1}})
    assert first.status_code == 202
    refused = await post({"type": "x", "channel": "limits-a", "data": data_of_size(LIMIT + 1)})
    assert refused.status_code == 413
    assert refused.json()["code"] == "payload_too_large"
    assert str(LIMIT) in refused.json()["detail"]
    position = (await get_broker().positions(["limits-a"]))["limits-a"]
    assert position.offset == 1


async def test_the_limit_counts_utf8_bytes_not_characters():
    # 2-byte characters: fewer characters than the limit, more bytes.
    data = data_of_size(LIMIT + 2, char="é")
    assert len(str(data)) < LIMIT + 2
    response = await post({"type": "x", "channel": "limits-b", "data": data})
    assert response.status_code == 413
    at_limit = await post({"type": "x", "channel": "limits-b", "data": data_of_size(LIMIT, "é")})
    assert at_limit.status_code == 202


async def test_a_batch_with_one_publication_over_the_limit_publishes_none_of_it():
    batch = [
        {"type": "x", "channel": "limits-c", "data": {"n": 1}},
        {"type": "x", "channel": "limits-c", "data": data_of_size(LIMIT + 1)},
    ]
    response = await post(batch)
    assert response.status_code == 413
    assert (await get_broker().positions(["limits-c"]))["limits-c"].offset == 0


async def test_a_publication_to_every_client_is_held_to_the_same_limit():
    response = await post({"type": "x", "data": data_of_size(LIMIT + 1)})
    assert response.status_code == 413


async def test_the_publishing_service_refuses_it_for_every_caller(settings):
    settings.REALTIME = {**settings.REALTIME, "MAX_PUBLICATION_BYTES": 100}
    with pytest.raises(PublicationTooLargeError):
        await apublish(type="x", channel="limits-d", data=data_of_size(101))
    assert (await apublish(type="x", channel="limits-d", data=data_of_size(100))).id


@pytest.mark.live
async def test_what_is_accepted_at_the_limit_is_delivered_under_both_servers(server_factory):
    server = server_factory(REALTIME_PUBLIC_CHANNELS="limits")
    ws, _ = await connect(server.ws_url)
    await subscribe(ws, "limits")
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        small = await client.post("/broadcast", json={"type": "x", "channel": "limits", "data": {}})
        too_big = await client.post(
            "/broadcast",
            json={"type": "x", "channel": "limits", "data": data_of_size(LIMIT + 1)},
        )
        at_limit = await client.post(
            "/broadcast",
            json={"type": "x", "channel": "limits", "data": data_of_size(LIMIT, "é")},
        )
    assert (small.status_code, too_big.status_code, at_limit.status_code) == (202, 413, 202)
    assert too_big.json()["code"] == "payload_too_large"
    first, second = await recv_json(ws), await recv_json(ws)
    assert first["offset"] == 1
    assert second["offset"] == 2  # the refused one spent none
    assert second["data"] == data_of_size(LIMIT, "é")
    await ws.close()


def test_a_publication_limit_larger_than_a_sockets_buffer_is_a_check_error(settings):
    settings.REALTIME = {
        **settings.REALTIME,
        "MAX_PUBLICATION_BYTES": 1024 * 1024,
        "MAX_SOCKET_BUFFER_BYTES": 1024 * 1024,
    }
    assert [error.id for error in realtime_limit_checks()] == ["realtime.E001"]
    settings.REALTIME = {**settings.REALTIME, "MAX_SOCKET_BUFFER_BYTES": 2 * 1024 * 1024}
    assert realtime_limit_checks() == []
