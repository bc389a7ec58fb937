"""Our ASGI server adapters (realtime/servers) in real processes: the transport
extension under uvicorn and daphne, observed through tests/probe_app.py over
real sockets; and the launcher and runserver serving the application."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from .live import RUNSERVER_COMMAND, LiveServer, base_env, serve_command, wait_for
from .wsclient import connect, recv_json, send_json

pytestmark = pytest.mark.live

FRAME_BYTES = 4096 + 4  # tests/probe_app.py's text frames on the wire: payload and header
# More than the kernels hold for a peer that does not read (on loopback the sender's
# send buffer grows to megabytes), so that the server's own buffer fills.
FLOOD_FRAMES = 2048
FLOOD = f"bytes={FLOOD_FRAMES * 4096}"
EXTENSION_CLASS = {"uvicorn": "AsyncioSocketTransport", "daphne": "TwistedSocketTransport"}


class SilentSocket:
    """A WebSocket client on a raw TCP socket with a small receive buffer: it
    does the handshake by hand and then reads nothing until told to."""

    def __init__(self, port: int, path: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = b""
        while not head.endswith(b"\r\n\r\n"):  # byte by byte: not one byte of a frame
            byte = self.sock.recv(1)
            assert byte, f"closed during the handshake: {head!r}"
            head += byte
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_close(self, code: int = 1000) -> None:
        """Start the closing handshake (a client's frames are masked)."""
        mask = os.urandom(4)
        payload = code.to_bytes(2, "big")
        self.sock.sendall(
            b"\x88\x82" + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        )

    def read(self, size: int, timeout: float = 20) -> int:
        """Read `size` bytes (or until the connection ends); return how many came."""
        self.sock.settimeout(timeout)
        received = 0
        while received < size:
            chunk = self.sock.recv(min(65536, size - received))
            if not chunk:
                break
            received += len(chunk)
        return received

    def read_until_closed(self, timeout: float = 10) -> tuple[bool, int]:
        """Read everything; return whether the connection ended (closed or reset)
        within `timeout`, and how many bytes came before it did."""
        deadline = time.monotonic() + timeout
        received = 0
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return True, received
            except TimeoutError:
                break
            if not chunk:
                return True, received
            received += len(chunk)
        return False, received

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def probe_server(server_kind: str) -> Iterator[LiveServer]:
    """tests/probe_app.py, served by the launcher under `server_kind`."""
    server = LiveServer(
        env=base_env(), command=serve_command(server_kind, app="tests.probe_app:app")
    )
    yield server.start()
    server.stop()


def probe(server: LiveServer, key: str) -> dict:
    return server.get(f"/probe?id={key}").json()


def held(server: LiveServer, key: str) -> dict:
    """The state of socket `key` once its flood waits on a transport that says
    it is not writable."""
    return wait_for(
        lambda: (state := probe(server, key)).get("waiting") and not state["writable"] and state,
        20,
        what=f"socket {key} to be not writable",
    )


def test_a_socket_that_never_reads_makes_the_transport_not_writable(probe_server, server_kind):
    silent = SilentSocket(probe_server.port, f"/flood?id=silent&{FLOOD}")
    try:
        state = held(probe_server, "silent")
        assert state["extension"] == EXTENSION_CLASS[server_kind]
        if server_kind == "uvicorn":
            # asyncio says how much it holds; Twisted keeps part of it where
            # no public attribute shows it, so daphne's figure is a lower bound.
            assert state["buffered"] > 0
        assert state["waits"] >= 1
        assert not state["finished"]
        assert state["frames_sent"] < FLOOD_FRAMES
        # A second later it is still held back. (The kernel may take a little more
        # meanwhile, as its send buffer grows: the flood then sends until the
        # server's buffer is full again.)
        time.sleep(1)
        assert not held(probe_server, "silent")["finished"]
    finally:
        silent.close()


def test_a_socket_that_reads_again_gets_every_frame_once_the_buffer_drains(probe_server):
    slow = SilentSocket(probe_server.port, f"/flood?id=slow&{FLOOD}")
    try:
        assert held(probe_server, "slow")["frames_sent"] < FLOOD_FRAMES
        assert slow.read(FLOOD_FRAMES * FRAME_BYTES) == FLOOD_FRAMES * FRAME_BYTES
        state = wait_for(
            lambda: (state := probe(probe_server, "slow"))["finished"] and state,
            20,
            what="the flood to finish",
        )
        assert state["frames_sent"] == FLOOD_FRAMES
        assert state["writable"]
        assert state["waits"] >= 1
    finally:
        slow.close()


def test_abort_drops_a_connection_whose_peer_never_reads(probe_server):
    silent = SilentSocket(probe_server.port, f"/flood?id=doomed&{FLOOD}")
    try:
        held(probe_server, "doomed")
        aborted = probe_server.post("/abort?id=doomed").json()
        # The application hears of it, and its wait for the buffer returns.
        wait_for(
            lambda: (
                (state := probe(probe_server, "doomed"))["disconnected"] and not state["waiting"]
            ),
            10,
            what="the application to see the connection lost",
        )
        # The client sees the connection end, short of what the server had buffered.
        closed, received = silent.read_until_closed(timeout=10)
        assert closed
        assert received < aborted["frames_sent"] * FRAME_BYTES
    finally:
        silent.close()


def test_a_client_that_closes_while_the_buffer_is_full_gets_the_rest_and_the_end(probe_server):
    closing = SilentSocket(probe_server.port, f"/flood?id=closing&{FLOOD}")
    try:
        held(probe_server, "closing")
        closing.send_close()
        # The server answers the close behind what it has buffered, then ends the
        # connection once the client has read it all.
        closed, _ = closing.read_until_closed(timeout=20)
        assert closed
        # And the application's wait for the buffer returns. (Under daphne,
        # autobahn unregisters the transport's producer before it closes, so
        # no stopProducing comes.)
        wait_for(
            lambda: (
                (state := probe(probe_server, "closing"))["disconnected"] and not state["waiting"]
            ),
            10,
            what="the application to see the connection lost",
        )
    finally:
        closing.close()


async def test_the_launcher_serves_stats_and_the_socket(server_factory):
    server = server_factory()
    assert server.get("/stats").status_code == 200
    ws, hello = await connect(server.ws_url)
    assert hello["type"] == "connected"
    await send_json(ws, {"type": "ping", "data": {"n": 1}})
    reply = await recv_json(ws)
    assert (reply["type"], reply["data"]) == ("pong", {"n": 1})
    await ws.close()


async def test_runserver_serves_stats_static_files_and_the_socket(daphne_factory):
    server = daphne_factory(command=RUNSERVER_COMMAND, DJANGO_DEBUG="true")
    assert server.get("/stats").status_code == 200
    css = server.get("/static/admin/css/base.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    ws, hello = await connect(server.ws_url)
    assert hello["type"] == "connected"
    await send_json(ws, {"type": "ping", "data": {"n": 1}})
    reply = await recv_json(ws)
    assert (reply["type"], reply["data"]) == ("pong", {"n": 1})
    await ws.close()


def test_runserver_is_ours_and_serves_with_the_realtime_server():
    code = (
        "import django; django.setup();"
        "from django.core.management import get_commands, load_command_class;"
        "app = get_commands()['runserver'];"
        "print(app, load_command_class(app, 'runserver').server_cls.__qualname__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=base_env(DJANGO_SETTINGS_MODULE="paychain.settings"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.split() == ["realtime", "RealtimeServer"]
