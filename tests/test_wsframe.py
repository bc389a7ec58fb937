"""Frames built once are the frames websockets itself would send."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from realtime.wsframe import Outgoing, text_frame


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 200_000])
def test_a_text_frame_is_the_unmasked_frame_websockets_sends(length):
    payload = ("é" * length).encode()[:length]
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame(payload) == expected


def test_an_outgoing_message_knows_its_utf8_size_and_frame():
    message = Outgoing('{"s":"ü"}')
    assert message.size == len('{"s":"ü"}'.encode())
    assert message.frame == text_frame('{"s":"ü"}'.encode())
