"""A tiny headless-Chromium driver for tests, over the Chrome DevTools Protocol.

No browser download: it runs the system's Chromium (Debian package ``chromium``, which
``make test`` installs) and talks to it through ``--remote-debugging-port`` with the
``websockets`` client. Enough for loading a file, evaluating JavaScript, clicking at an
element's position (real mouse events) and taking screenshots.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from typing import Any

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio",
    "--hide-scrollbars", "--remote-debugging-port=0", "--remote-allow-origins=*",
]


def find_chromium() -> str | None:
    """PIXTRACT_CHROMIUM, else the first Chromium/Chrome on PATH, else /usr/bin/chromium."""
    exe = os.environ.get("PIXTRACT_CHROMIUM")
    if exe:
        return exe if os.access(exe, os.X_OK) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


class CDPError(RuntimeError):
    pass


class Browser:
    """One headless Chromium with one page (tab). Use as a context manager."""

    def __init__(self, executable: str, width: int = 1280, height: int = 900, timeout: float = 30.0):
        from websockets.sync.client import connect

        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="pixtract-chromium-")
        self.log_path = os.path.join(self.profile, "chromium.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.console: list[str] = []
        try:
            port, ws_path = self._wait_for_port()
            self.ws = connect(f"ws://127.0.0.1:{port}{ws_path}", max_size=None,
                              open_timeout=timeout, ping_interval=None)
            target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
            self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True},
                                     session=False)["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.call(f"{domain}.enable")
            self.call("Emulation.setDeviceMetricsOverride",
                      {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        except BaseException:
            self.close()
            raise

    def _wait_for_port(self) -> tuple[int, str]:
        marker = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CDPError(f"chromium exited with {self.proc.returncode}: {self._tail()}")
            try:
                with open(marker, encoding="utf-8") as f:
                    lines = f.read().split()
                if len(lines) >= 2:
                    return int(lines[0]), lines[1]
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        raise CDPError(f"chromium did not open its DevTools port in {self.timeout:.0f}s: {self._tail()}")

    def _tail(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-2000:].decode("utf-8", "replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------ protocol
    def call(self, method: str, params: dict[str, Any] | None = None, session: bool = True) -> dict[str, Any]:
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError(f"{method}: no answer in {self.timeout:.0f}s")
            reply = json.loads(self.ws.recv(timeout=left))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._event(reply)

    def _event(self, ev: dict[str, Any]) -> None:
        if "method" not in ev:
            return
        self.events.append(ev)
        p = ev.get("params", {})
        if ev["method"] == "Runtime.consoleAPICalled":
            self.console.append(f"console.{p.get('type')}: "
                                + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
        elif ev["method"] == "Log.entryAdded":
            e = p.get("entry", {})
            self.console.append(f"{e.get('source')}/{e.get('level')}: {e.get('text')}")
        elif ev["method"] == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.console.append(f"exception: {d.get('text')} {d.get('exception', {}).get('description', '')}")

    def wait_event(self, method: str, timeout: float | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for k, ev in enumerate(self.events):
                if ev["method"] == method:
                    return self.events.pop(k)
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError(f"no {method} event in time")
            self._event(json.loads(self.ws.recv(timeout=left)))

    # ------------------------------------------------------------------ page actions
    def goto(self, url: str) -> None:
        self.events = [e for e in self.events if e["method"] != "Page.loadEventFired"]
        result = self.call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"navigate {url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired")

    def eval(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            d = result["exceptionDetails"]
            raise CDPError(f"{expression!r}: {d.get('exception', {}).get('description') or d.get('text')}")
        return result.get("result", {}).get("value")

    def click(self, selector: str, until: str | None = None) -> None:
        """A real left click at the centre of the element (scrolled into view first). On a loaded
        machine images still loading can move the element after it was measured, so the point is
        measured again until the element itself is what sits there. Even then the element can move
        between the measure and the mouse events; for a click whose effect is idempotent, `until`
        (a JavaScript condition) names that effect and the click is repeated until it holds."""
        deadline = time.monotonic() + self.timeout
        while True:
            self._click_once(selector, deadline)
            if until is None:
                return
            settle = time.monotonic() + 1.0
            while time.monotonic() < settle:
                if self.eval(f"!!({until})"):
                    return
                time.sleep(0.05)
            if time.monotonic() > deadline:
                raise CDPError(f"clicked {selector!r} but {until!r} never held")

    def _click_once(self, selector: str, deadline: float) -> None:
        while True:
            box = self.eval(
                f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
                " if (!e) return null; e.scrollIntoView({block: 'center'});"
                " const r = e.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;"
                " return [x, y, e.contains(document.elementFromPoint(x, y))]; })()")
            if box is None:
                raise CDPError(f"no element {selector!r}")
            x, y, on_target = box
            if on_target or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y, "button": "left",
                                                   "buttons": 1 if kind == "mousePressed" else 0,
                                                   "clickCount": 1})

    def screenshot(self, path: str, full_page: bool = False) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            w, h = self.eval("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True,
                          clip={"x": 0, "y": 0, "width": w, "height": min(h, 16000), "scale": 1})
        data = base64.b64decode(self.call("Page.captureScreenshot", params)["data"])
        with open(path, "wb") as f:
            f.write(data)
        return data

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        ws = getattr(self, "ws", None)
        if ws is not None:
            try:  # no waiting for the answer: the browser may be gone before it sends one
                ws.send(json.dumps({"id": next(self._ids), "method": "Browser.close", "params": {}}))
            except Exception:
                pass
            try:
                ws.close()
            except Exception:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
