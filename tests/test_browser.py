"""The README's browser-console example, pasted into a real (headless)
Chromium on a page of the server: its origin passes the handshake check, the
socket subscribes, pings, and receives a broadcast."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile

import httpx
import pytest
import websockets

from .conftest import IN_CI
from .live import free_port, wait_for

pytestmark = pytest.mark.live

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# The README's snippet, with the messages kept and a broadcast sent from the page.
README_SNIPPET = """
new Promise((resolve, reject) => {
  const received = []
  const ws = new WebSocket(`ws://${location.host}/ws`)
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data)
    received.push(message)
    if (message.type === 'subscribed') {
      fetch('/broadcast', {
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify(
          {type: 'test_message', data: {message: 'Hello WebSocket!'}, channel: 'jobs'}),
      })
    }
    if (message.type === 'test_message') { ws.close(); resolve(JSON.stringify(received)) }
  }
  ws.onerror = () => reject('socket error')
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: 'subscribe', channels: ['jobs'] }))
    ws.send(JSON.stringify({ type: 'ping' }))
  }
  setTimeout(() => reject('timed out: ' + JSON.stringify(received)), 10000)
})
"""


@pytest.fixture
def chromium():
    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("CI=true and Chromium is not installed (.ci/run installs it)")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    port = free_port()
    profile = tempfile.mkdtemp(prefix="paychain-chromium-")
    process = subprocess.Popen(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def endpoint() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/json/version", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(endpoint, 30, what="Chromium's debugging endpoint")
    yield port
    process.kill()
    process.wait()
    shutil.rmtree(profile, ignore_errors=True)


async def evaluate_on_page(debug_port: int, url: str, expression: str) -> str:
    async with httpx.AsyncClient() as client:
        target = (await client.put(f"http://127.0.0.1:{debug_port}/json/new?about:blank")).json()
    async with websockets.connect(target["webSocketDebuggerUrl"], max_size=None) as cdp:
        await cdp.send(json.dumps({"id": 1, "method": "Page.enable"}))
        await cdp.send(json.dumps({"id": 3, "method": "Page.navigate", "params": {"url": url}}))
        while json.loads(await cdp.recv()).get("method") != "Page.loadEventFired":
            pass
        await cdp.send(
            json.dumps(
                {
                    "id": 2,
                    "method": "Runtime.evaluate",
                    "params": {"expression": expression, "awaitPromise": True},
                }
            )
        )
        while True:
            reply = json.loads(await cdp.recv())
            if reply.get("id") == 2:
                result = reply["result"]
                assert "exceptionDetails" not in result, result
                return result["result"]["value"]


async def test_the_readme_browser_example_works_in_chromium(daphne_server, chromium):
    page = daphne_server.url + "/health"
    wait_for(lambda: daphne_server.get("/health").status_code == 200, 5)
    received = json.loads(await evaluate_on_page(chromium, page, README_SNIPPET))
    types = [message["type"] for message in received]
    assert types[0] == "connected"
    assert "subscribed" in types
    assert "pong" in types
    assert received[-1]["data"] == {"message": "Hello WebSocket!"}
    assert received[-1]["channel"] == "jobs"
