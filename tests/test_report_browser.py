"""The cohort report in a real browser: headless Chromium driven over the DevTools protocol.

Opens ``report.html`` (and the shareable copy) from disk with the network unused, and checks that
every image loads, nothing is logged as an error, the key numbers of the embedded delivery
(46 patients, 18 IV, 39%) are visible, and every section is there; saves full-page PNG
screenshots under the test's ``tmp_path``.

Chromium is required, not optional: ``make test`` installs Debian's ``chromium`` when it is
missing (``make browser``), and this test fails when there is none. The DevTools client below
is the standard library only (a websocket is a dozen lines), so nothing else needs installing.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.test_report_workflow import report_run

CHROMIUM = os.environ.get("STORMCOHORT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-port=0"]
SECTIONS = ["Summary", "Data sources", "Participants", "Baseline characteristics and exposure",
            "Comparative effectiveness (target trial emulation)", "Outcomes", "Safety",
            "All IV-vs-SC estimates", "Methods", "Limitations", "Provenance", "Appendix: STROBE items and software"]


class WebSocket:
    """A minimal RFC 6455 client: text frames, masked from the client, ping answered."""

    def __init__(self, url: str, timeout: float = 60):
        assert url.startswith("ws://"), url
        host_port, _, path = url[len("ws://"):].partition("/")
        host, _, port = host_port.partition(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert b" 101 " in head.split(b"\r\n")[0], head

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("websocket closed")
            buf += chunk
        return buf

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        head += bytes([0x80 | n]) if n < 126 else (bytes([0x80 | 126]) + struct.pack(">H", n) if n < 65536
                                                   else bytes([0x80 | 127]) + struct.pack(">Q", n))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, text: str) -> None:
        self._send(0x1, text.encode())

    def recv(self) -> str:
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode == 0x8:
                raise ConnectionError("websocket closed by the browser")
            message += payload
            if b0 & 0x80:
                return message.decode()


class Chromium:
    """Headless Chromium with a fresh profile; ``call`` runs one DevTools command in the page."""

    def __init__(self):
        if not Path(CHROMIUM).exists():
            pytest.fail(f"chromium not found at {CHROMIUM}: install Debian's chromium package (`make browser` does)")
        self.profile = tempfile.mkdtemp(prefix="stormcohort-chromium-")
        self.proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        active = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + 60
        while not (active.exists() and len(active.read_text().splitlines()) >= 2):
            if time.time() > deadline or self.proc.poll() is not None:
                self.close()
                pytest.fail("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port, path = active.read_text().splitlines()[:2]
        self.ws = WebSocket(f"ws://127.0.0.1:{port}{path}")
        self.next_id, self.events, self.session = 0, [], None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if self.session:
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            for e in self.events:
                if e.get("method") == method:
                    return e
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)

    def open(self, path: Path) -> None:
        self.events.clear()
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=path.resolve().as_uri())
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"]["value"]

    def screenshot(self, path: Path) -> None:
        height = self.evaluate("document.documentElement.scrollHeight")
        self.call("Emulation.setDeviceMetricsOverride", width=1280, height=int(height), deviceScaleFactor=1,
                  mobile=False)
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))

    def errors(self) -> list[str]:
        found = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                found.append(f"console: {p.get('args')}")
            elif m == "Runtime.exceptionThrown":
                found.append(f"exception: {p.get('exceptionDetails', {}).get('text')}")
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                found.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Network.loadingFailed":
                found.append(f"network: {p.get('errorText')}")
        return found

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    b = Chromium()
    yield b
    b.close()


IMAGES = "Array.from(document.images).map(i => ({ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth, alt: i.alt}))"
VISIBLE_TEXT = "document.body.innerText"


def test_report_opens_offline_with_every_image_and_section(browser, tmp_path):
    out = report_run()
    browser.open(out / "report.html")
    images = browser.evaluate(IMAGES)
    assert len(images) == 10, images
    assert all(i["ok"] and i["w"] > 300 for i in images), images
    assert browser.errors() == []
    # nothing fetched but the page itself and its data: URIs (self-contained, no network)
    assert all(u.startswith(("file:", "data:")) for u in browser.requests()), browser.requests()
    text = browser.evaluate(VISIBLE_TEXT)
    for key in ("46", "18 (39%)", "28 (61%)", "SYNTHETIC DATA"):
        assert key in text, key
    for title in SECTIONS:
        assert title in text, title
    shot = tmp_path / "report.png"
    browser.screenshot(shot)
    assert shot.stat().st_size > 100_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_shareable_report_opens_and_shows_only_disclosed_numbers(browser, tmp_path):
    out = report_run()
    browser.open(out / "report_shareable.html")
    images = browser.evaluate(IMAGES)
    assert [i["alt"] for i in images] == ["Forest plot of all IV-vs-SC estimates"]
    assert all(i["ok"] for i in images)
    assert browser.errors() == []
    text = browser.evaluate(VISIBLE_TEXT)
    # 46 -> 45, 18 -> 20 (44% of 45), 28 -> 30 with round_to 5
    assert "20 (44%)" in text and "18 (39%)" not in text
    browser.screenshot(tmp_path / "report_shareable.png")
