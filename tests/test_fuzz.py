"""Random frames: each is answered with a typed error or a documented close,
and other sockets keep being served."""

from __future__ import annotations

import json

from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework import serializers

from paychain.asgi import application
from realtime.protocol import ClientType, CloseCode, ErrorCode, ServerType
from realtime.serializers import BroadcastSerializer, well_formed

ERROR_CODES = {value for name, value in vars(ErrorCode).items() if name.isupper()}
CLOSE_CODES = {
    CloseCode.UNAUTHORIZED,
    CloseCode.RATE_LIMITED,
    CloseCode.MESSAGE_TOO_BIG,
    CloseCode.TOO_MANY_CONNECTIONS,
}
REPLY_TYPES = {
    ServerType.ERROR,
    ServerType.PONG,
    ServerType.SUBSCRIBED,
    ServerType.UNSUBSCRIBED,
    ServerType.AUTHENTICATED,
}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
client_types = st.sampled_from(sorted(ClientType.ALL) + ["", "PING", "connected", "error"])
frames_of_known_types = st.fixed_dictionaries(
    {"type": client_types},
    optional={
        "channels": json_values | st.lists(st.text(max_size=90), max_size=5),
        "channel": json_values,
        "data": json_values,
        "token": json_values,
    },
).map(json.dumps)
text_frames = st.one_of(
    st.text(max_size=200),
    json_values.map(json.dumps),
    frames_of_known_types,
    st.integers(min_value=1, max_value=80_000).map(lambda n: "[" * n),
    st.integers(min_value=1, max_value=80_000).map(
        lambda n: '{"type":"ping","data":{"x":"' + "y" * n + '"}}'
    ),
)
frames = st.one_of(text_frames, st.binary(max_size=200))


async def exchange(frame: str | bytes) -> None:
    witness = WebsocketCommunicator(application, "/ws")
    assert (await witness.connect())[0]
    await witness.receive_json_from()
    fuzzed = WebsocketCommunicator(application, "/ws")
    assert (await fuzzed.connect())[0]
    await fuzzed.receive_json_from()

    key = "bytes" if isinstance(frame, bytes) else "text"
    await fuzzed.send_input({"type": "websocket.receive", key: frame})
    await fuzzed.send_json_to({"type": "ping", "data": {"witness": True}})
    last_error = None
    while True:
        output = await fuzzed.receive_output(timeout=2)
        if output["type"] == "websocket.close":
            assert output["code"] in CLOSE_CODES, output
            assert last_error is not None, "a close must follow an error carrying its reason"
            break
        message = json.loads(output["text"])
        assert message["type"] in REPLY_TYPES, message
        assert isinstance(message["data"], dict)
        if message["type"] == ServerType.ERROR:
            assert message["data"]["code"] in ERROR_CODES, message
            last_error = message
        if message["type"] == ServerType.PONG and message["data"] == {"witness": True}:
            await fuzzed.disconnect()
            break

    await witness.send_json_to({"type": "ping"})
    assert (await witness.receive_json_from())["type"] == ServerType.PONG
    await witness.disconnect()


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frame=frames)
def test_any_frame_gets_a_typed_answer_and_other_sockets_keep_working(frame):
    async_to_sync(exchange)(frame)


valid_names = st.from_regex(r"[A-Za-z0-9_.\-]{1,90}", fullmatch=True)
broadcast_bodies = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "type": valid_names | json_values,
            "data": st.dictionaries(st.text(max_size=10), json_values, max_size=4) | json_values,
            "channel": valid_names | st.none() | json_values,
            "user_id": st.integers(min_value=-1, max_value=3) | json_values,
            "user_ids": st.lists(st.integers(min_value=0, max_value=3), max_size=3),
            "other": json_values,
        },
    ),
)


def drf_answer(body: object) -> tuple[str, object]:
    """What DRF's own validation of BroadcastSerializer's fields makes of `body`."""
    serializer = BroadcastSerializer(data=body)
    try:
        return "valid", serializers.Serializer.run_validation(serializer, body)
    except serializers.ValidationError:
        return "invalid", None


@settings(max_examples=400, deadline=None)
@given(broadcast_bodies)
def test_a_broadcast_on_the_fast_path_is_what_drf_would_make_of_it(body):
    fast = well_formed(body)
    if fast is not None:
        assert drf_answer(body) == ("valid", fast)


def test_the_common_broadcast_takes_the_fast_path_and_the_rest_drf():
    body = {"type": "job.created", "data": {"id": 1}, "channel": "jobs"}
    assert well_formed(body) == body
    assert well_formed({"type": "x", "channel": None}) == {"type": "x", "channel": None}
    for other in ({"type": "x", "user_id": 1}, {"type": "x" * 65}, {"type": "x", "data": None}):
        assert well_formed(other) is None
        serializer = BroadcastSerializer(data=other)
        assert serializer.is_valid() == ("user_id" in other)
