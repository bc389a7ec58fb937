"""
WebSocket frames built once.

A server's frames are unmasked (RFC 6455, 5.1), so without per-message
compression a text message is the same bytes on every socket: the publication
is framed here once and those bytes go to every subscriber's transport (see
realtime.client), the way uWebSockets' pre-framed publish does.
"""

from __future__ import annotations

import struct

# FIN + opcode 1 (text).
_TEXT = 0x81


def text_frame(payload: bytes) -> bytes:
    """One unfragmented, unmasked text frame carrying `payload` (UTF-8)."""
    length = len(payload)
    if length < 126:
        header = bytes((_TEXT, length))
    elif length < 65536:
        header = struct.pack("!BBH", _TEXT, 126, length)
    else:
        header = struct.pack("!BBQ", _TEXT, 127, length)
    return header + payload


class Outgoing:
    """One message on its way to one or many sockets: its text (for servers
    without our transport), its UTF-8 size, and its frame."""

    __slots__ = ("frame", "size", "text")

    def __init__(self, text: str) -> None:
        payload = text.encode()
        self.text = text
        self.size = len(payload)
        self.frame = text_frame(payload)
