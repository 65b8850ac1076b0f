"""Open a page in headless Chromium and report what a reader's browser would see.

Chromium is driven over the DevTools protocol (a websocket; tornado's client) — the same
protocol Playwright and Puppeteer use — with no network: every request the page makes is
recorded, console messages, uncaught exceptions and browser log entries (CSP violations,
failed loads) too, then each `<figure>` is measured in the rendered page and a PNG
screenshot of the viewport is taken.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
FIGURES_JS = """
JSON.stringify(Array.from(document.querySelectorAll('figure')).map(f => {
  const img = f.querySelector('img');
  const cap = f.querySelector('figcaption');
  return {alt: img ? img.alt : null, loaded: !!(img && img.complete && img.naturalWidth > 0),
          width: img ? img.getBoundingClientRect().width : 0,
          height: img ? img.getBoundingClientRect().height : 0,
          caption: cap ? cap.textContent.trim() : ''};
}))
"""


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


@dataclass
class PageReport:
    console: list[str] = field(default_factory=list)  # console.error/warn, exceptions, log errors
    requests: list[str] = field(default_factory=list)  # every URL the page asked for
    figures: list[dict] = field(default_factory=list)
    screenshot: bytes = b""
    height: int = 0

    @property
    def external(self) -> list[str]:
        """Requests that leave the machine (anything but the file itself and data: URIs)."""
        return [u for u in self.requests if not u.startswith(("file:", "data:"))]


def open_page(
    path: Path, width: int = 1200, height: int = 900, timeout: float = 60.0
) -> PageReport:
    exe = find_chromium()
    if exe is None:
        raise RuntimeError("no chromium on PATH")
    profile = tempfile.mkdtemp(prefix="segtool-chromium-")
    proc = subprocess.Popen(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--no-default-browser-check", "--disable-extensions",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--remote-allow-origins=*",
         f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        port = _devtools_port(proc, timeout)
        return asyncio.run(asyncio.wait_for(_drive(port, path, width, height), timeout))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_port(proc: subprocess.Popen, timeout: float) -> int:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if m:
            return int(m.group(1))
    raise RuntimeError("chromium did not open its DevTools port")


async def _drive(port: int, path: Path, width: int, height: int) -> PageReport:
    from tornado.websocket import websocket_connect

    targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list").read())
    page = next(t for t in targets if t.get("type") == "page")
    ws = await websocket_connect(page["webSocketDebuggerUrl"], max_message_size=1 << 28)
    report = PageReport()
    ids = iter(range(1, 1 << 30))
    loaded = asyncio.Event()
    pending: dict[int, asyncio.Future] = {}

    async def send(method: str, **params):
        i = next(ids)
        fut = asyncio.get_running_loop().create_future()
        pending[i] = fut
        await ws.write_message(json.dumps({"id": i, "method": method, "params": params}))
        return await fut

    async def listen():
        while True:
            msg = await ws.read_message()
            if msg is None:
                return
            m = json.loads(msg)
            if "id" in m and m["id"] in pending:
                fut = pending.pop(m["id"])
                if "error" in m:
                    fut.set_exception(RuntimeError(f"{m['error']}"))
                else:
                    fut.set_result(m.get("result", {}))
                continue
            method, p = m.get("method"), m.get("params", {})
            if method == "Network.requestWillBeSent":
                report.requests.append(p["request"]["url"])
            elif method == "Runtime.consoleAPICalled" and p.get("type") in (
                "error",
                "warning",
                "assert",
            ):
                text = " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p.get("args", [])
                )
                report.console.append(f"console.{p['type']}: {text}")
            elif method == "Runtime.exceptionThrown":
                report.console.append(f"exception: {p['exceptionDetails'].get('text')}")
            elif method == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
                e = p["entry"]
                report.console.append(
                    f"log {e.get('source')}/{e['level']}: {e.get('text')} {e.get('url', '')}"
                )
            elif method == "Page.loadEventFired":
                loaded.set()

    listener = asyncio.create_task(listen())
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            await send(f"{domain}.enable")
        await send("Emulation.setDeviceMetricsOverride", width=width, height=height,
                   deviceScaleFactor=1, mobile=False)  # fmt: skip
        await send("Page.navigate", url=Path(path).resolve().as_uri())
        await loaded.wait()
        await asyncio.sleep(0.5)  # late console messages and image decoding
        r = await send("Runtime.evaluate", expression=FIGURES_JS, returnByValue=True)
        report.figures = json.loads(r["result"]["value"])
        r = await send("Runtime.evaluate", expression="document.documentElement.scrollHeight",
                       returnByValue=True)  # fmt: skip
        report.height = int(r["result"]["value"])
        shot = await send("Page.captureScreenshot", format="png")
        report.screenshot = base64.b64decode(shot["data"])
    finally:
        listener.cancel()
        ws.close()
    return report


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
