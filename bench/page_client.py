"""A visitor without a browser: a Streamlit websocket client that drives a page as a tab does, minus drawing.

A load test of the hosted demo must cost the server what a classroom of real tabs costs it, and thirty
chromium tabs would cost this 2-core box far more than the server itself. So each simulated visitor
speaks Streamlit's own protocol to a real `streamlit run` (the messages and timers of Streamlit's
frontend, read from its 1.67 bundle):

  * it opens the page (GET of the page, /_stcore/host-config, /_stcore/health), connects to
    /_stcore/stream and asks for a run of the page with its query string, as a fresh tab does;
  * it keeps the page's script hash from the first run, and the hashes of the big elements it was
    sent (a browser's message cache: the server then sends a reference instead of the element);
  * it honours `auto_rerun` (one timer per fragment, replaced when the interval changes, all cleared
    at each full run of the page, cancelled by `stop_auto_rerun`): every interval it asks for a rerun
    of that fragment, as the browser's timers do for the live views' `st.fragment(run_every=...)`;
  * it fetches every picture it is sent (st.image sends a URL the browser then GETs);
  * it presses a button by asking for a rerun with that button's trigger set, as a click does.

It reads from the elements it is sent what the pages show a visitor: the step counter, the run's
place in a queue, "N runs share this box" and "Shared with N other visitors".
"""
from __future__ import annotations

import asyncio
import os
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect

# What the pages say, as the visitor reads it.
STEP_METRIC = "Generator step"                               # the 2-D GAN page's step (st.metric)
STEP_MARKDOWN = re.compile(r"\bStep ([\d,]+)\**\s·")          # Compare's "**Step 1,234** · running ..."
ON_BOX = re.compile(r"(\d+) runs share this box|(the only run on this box)")
SHARED = re.compile(r"Shared with (\d+) other visitor")
# A visitor kept from training: the queue (explorer/session.py) or the per-visitor budget (explorer/limits.py).
REFUSAL = re.compile(r"^Queued:|this demo's limit per visitor|please wait a moment")


def parse_step(element) -> int | None:
    """The step counter in one element of a training page, or None if it is not one.

    >>> from streamlit.proto.Element_pb2 import Element
    >>> e = Element(); e.metric.label = "Generator step"; e.metric.body = "1,234"; parse_step(e)
    1234
    """
    kind = element.WhichOneof("type")
    if kind == "metric" and element.metric.label == STEP_METRIC:
        return int(element.metric.body.replace(",", ""))
    if kind == "markdown" and (m := STEP_MARKDOWN.search(element.markdown.body)):
        return int(m.group(1).replace(",", ""))
    return None


def runs_on_box(text: str) -> int | None:
    """'… · 12 runs share this box; this one: 9 steps/s' -> 12 (ui/run_controls.speed); 1 for the only run."""
    m = ON_BOX.search(text)
    if m is None:
        return None
    return int(m.group(1)) if m.group(1) else 1


@dataclass(eq=False)   # each visitor is itself (a key of the rate tables), however alike two are
class Visit:
    """What one visitor saw: its steps over time and the page's words about its run."""
    name: str
    path: str
    steps: list[tuple[float, int]] = field(default_factory=list)   # (time.monotonic(), step) at each change
    on_box: list[tuple[float, int]] = field(default_factory=list)  # (when, runs the page says share the box)
    shared_with: int = 0          # the most "Shared with N other visitors" said
    refusals: list[str] = field(default_factory=list)   # queue or budget sentences shown to this visitor
    pressed: list[str] = field(default_factory=list)    # the buttons it pressed
    full_runs: int = 0
    fragment_reruns: int = 0      # reruns of a fragment it asked for (its timers)
    pictures: int = 0             # pictures fetched
    opened: float = 0.0           # time.monotonic() when its page was open
    error: str = ""


async def http_get(host: str, port: int, path: str) -> int:
    """GET path over HTTP/1.1 and read the whole answer, as a browser fetching a picture; its size."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        return len(await reader.read())
    finally:
        writer.close()


class PageClient:
    """One visitor on one page of a live server (base URL http://host:port, path 'gan_2d', query 'seed=7')."""

    def __init__(self, base_url: str, path: str, query: str, visit: Visit):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname, parts.port
        self.path, self.query, self.visit = path, query, visit
        self.page_hash = ""
        self.buttons: dict[str, tuple[str, bool]] = {}   # label -> (widget id, disabled), this run's
        self.cached: set[str] = set()
        self.timers: dict[str, tuple[float, asyncio.Task]] = {}
        self.idle = asyncio.Event()                       # no script run of the page in progress
        self.ws = None
        self._fetches: set[asyncio.Task] = set()

    async def open(self) -> None:
        for path in (f"/{self.path}", "/_stcore/host-config", "/_stcore/health"):
            await http_get(self.host, self.port, path)
        self.ws = await connect(f"ws://{self.host}:{self.port}/_stcore/stream", subprotocols=["streamlit"],
                                max_size=None, open_timeout=60)
        await self.rerun()

    async def rerun(self, fragment_id: str = "", trigger: str = "", auto: bool = False) -> None:
        """Ask for a run of the page (or of one fragment), with a button's trigger set if given."""
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string, state.fragment_id, state.is_auto_rerun = self.query, fragment_id, auto
        if self.page_hash:
            state.page_script_hash = self.page_hash
        else:
            state.page_name = self.path
        if trigger:
            state.widget_states.widgets.add(id=trigger, trigger_value=True)
        state.cached_message_hashes.extend(self.cached)
        if not fragment_id:
            self.idle.clear()
        await self.ws.send(msg.SerializeToString())

    async def press(self, *labels: str, timeout_s: float = 60.0) -> bool:
        """Click the first enabled button with one of these labels once the page is idle; False if none came."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                await asyncio.wait_for(self.idle.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                break
            for label in labels:
                wid, disabled = self.buttons.get(label, ("", True))
                if wid and not disabled:
                    self.visit.pressed.append(label)
                    await self.rerun(trigger=wid)
                    return True
            await asyncio.sleep(0.2)
        return False

    async def listen(self) -> None:
        """Read the server's messages until the connection closes, acting on each as the frontend does."""
        async for data in self.ws:
            msg = ForwardMsg()
            msg.ParseFromString(data)
            self.handle(msg)

    def handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if msg.metadata.cacheable and msg.hash:
            self.cached.add(msg.hash)
        if kind == "new_session":
            self.page_hash = self.page_hash or msg.new_session.page_script_hash
            if not msg.metadata.run.fragment_ids:   # a run of the whole page: the frontend drops every timer
                self.visit.full_runs += 1
                self.buttons.clear()
                for _, task in self.timers.values():
                    task.cancel()
                self.timers.clear()
        elif kind == "navigation" and msg.navigation.page_script_hash:
            self.page_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            self.every(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                if fid in self.timers:
                    self.timers.pop(fid)[1].cancel()
        elif kind == "script_finished" and not msg.metadata.run.fragment_ids:
            self.idle.set()
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self.read(msg.delta.new_element)

    def every(self, fragment_id: str, interval: float) -> None:
        if not fragment_id or (fragment_id in self.timers and self.timers[fragment_id][0] == interval):
            return
        if fragment_id in self.timers:
            self.timers[fragment_id][1].cancel()

        async def tick() -> None:
            while True:
                await asyncio.sleep(interval)
                self.visit.fragment_reruns += 1
                await self.rerun(fragment_id=fragment_id, auto=True)

        self.timers[fragment_id] = (interval, asyncio.create_task(tick()))

    def read(self, element) -> None:
        kind, now = element.WhichOneof("type"), time.monotonic()
        if kind == "button":
            self.buttons[element.button.label] = (element.button.id, element.button.disabled)
        elif kind == "imgs":
            for img in element.imgs.imgs:
                if img.url.startswith("/"):
                    task = asyncio.create_task(http_get(self.host, self.port, img.url))
                    self._fetches.add(task)
                    task.add_done_callback(self._fetched)
        step = parse_step(element)
        if step is not None and (not self.visit.steps or self.visit.steps[-1][1] != step):
            self.visit.steps.append((now, step))
        text = {"markdown": lambda: element.markdown.body, "alert": lambda: element.alert.body}.get(kind)
        if text is None:
            return
        body = text()
        if (n := runs_on_box(body)) is not None:
            self.visit.on_box.append((now, n))
        if m := SHARED.search(body):
            self.visit.shared_with = max(self.visit.shared_with, int(m.group(1)))
        if REFUSAL.search(body) and body not in self.visit.refusals:
            self.visit.refusals.append(body)

    def _fetched(self, task: asyncio.Task) -> None:
        self._fetches.discard(task)
        if not task.cancelled() and task.exception() is None:
            self.visit.pictures += 1

    async def close(self) -> None:
        for _, task in self.timers.values():
            task.cancel()
        for task in list(self._fetches):
            task.cancel()
        if self.ws is not None:
            await self.ws.close()


async def visitor(base_url: str, visit: Visit, query: str, delay_s: float, until: float, pause: bool) -> None:
    """One visitor: open the page after delay_s, press Start, watch it until `until` (time.monotonic()),
    then press Pause if asked (so its run stops training before the next part of a benchmark) and leave."""
    await asyncio.sleep(delay_s)
    client = PageClient(base_url, visit.path, query, visit)
    try:
        await client.open()
        visit.opened = time.monotonic()
        listener = asyncio.create_task(client.listen())
        if not await client.press("Start", "Resume"):
            visit.error = visit.error or "no Start button came within a minute"
        left = until - time.monotonic()
        if left > 0:
            await asyncio.wait([listener], timeout=left)
        if listener.done() and listener.exception() is not None:
            visit.error = visit.error or f"connection lost: {listener.exception()!r}"
        elif pause and not await client.press("Pause", timeout_s=20):
            visit.error = visit.error or "no Pause button came"
        listener.cancel()
    except (OSError, TimeoutError) as err:
        visit.error = visit.error or f"could not open the page: {err!r}"
    finally:
        await client.close()


def crowd(base_url: str, plan: list[tuple[str, str, str, float]], until: float, pause: bool = False) -> dict:
    """Run the visitors of `plan` (name, page path, query string, seconds before it arrives) at once until
    `until`; what each saw, and the CPU seconds this process spent being them (it shares the box)."""
    visits = [Visit(name, path) for name, path, _, _ in plan]

    async def everyone() -> None:
        await asyncio.gather(*(visitor(base_url, v, query, delay, until, pause)
                               for v, (_, _, query, delay) in zip(visits, plan)))

    cpu0 = time.process_time()
    asyncio.run(everyone())
    return {"visits": visits, "cpu_s": time.process_time() - cpu0, "pid": os.getpid()}
