"""A classroom on one small box: a real server, simulated visitors training, real tabs timing pages.

    python bench/classroom.py [--visitors 30] [--minutes 3] [--private 10]

A real `streamlit run streamlit_app.py` on 127.0.0.1. Simulated visitors (bench/page_client.py: each a
headless Streamlit client that opens a page and drives it as a browser tab does, its fragment timers,
messages and picture fetches included) arrive over --ramp-s seconds and press Start: `--private` of
them on the 2-D GAN page with a seed of their own (`gan_2d?seed=101`, ...), the others half on the 2-D
GAN page's defaults and half on Compare's default preset, so the box trains one run per distinct key
(shared runs). They run in a process of their own (they share the 2 cores with the server, as the
tabs do; their CPU is reported). Meanwhile three chromium tabs (Playwright) time, in turn, one load
every --load-every-s seconds and each in a fresh context, the Histograms page to its EMD number
(bench/app_overhead.time_to_numbers) and the 2-D GAN and Compare pages to their title with the script
idle; the same is timed with the box idle
before the load. /_stcore/health is timed every second, and the RSS of the server and its workers
every 2 s. Before any of it, one private run alone on the idle box gives `lone_steps_per_s`.

After the load window (and the quiet stretch below) the visitors leave, their sessions are released
(server.disconnectedSessionTTL, 60 s), and the server's thread count is compared with its idle count
(both as the next visitor finds them, once the web server's file pool has ended its idle threads:
settled_thread_count; the count as the visitors left is reported too); then the server is stopped and
any worker process still alive is counted (and ended). Bounded: --minutes of load and --quiet-s after
it, every wait has a timeout, the server and the browser are stopped in `finally`.

The three tabs are the benchmark's instrument, not part of a classroom, whose browsers run on the
students' laptops: a load of one of these pages costs chromium 5-7 CPU seconds (mostly Streamlit's
frontend: its home page alone about 4), so one load every 8 s takes about a third of this box's 2
cores, more than the server, its painter and the 30 visitors' requests together. So after the load
window the visitors train on for --quiet-s seconds while no tab loads, and the private runs' speed
over that stretch is reported beside the one under the tabs (`..._tabs_idle`), with the box's CPU
shares then. The target is judged on the speed under the tabs.

Targets (issue "A classroom on one small box"): render_p95_ratio <= 1.5, refused 0, runs_computing
equal to the number of distinct keys, every private run at least 1/10 of a lone run's speed, RSS of
the last third within 10% of the first, nothing left over. Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from itertools import zip_longest
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from app_overhead import IDLE, LOAD_MS, cpu_of, cpu_seconds, process_groups, time_to_numbers  # noqa: E402
from classroom_figures import (  # noqa: E402
    alive,
    children,
    machine_cpu_s,
    p95,
    rate_in,
    rss_mb,
    thirds,
    thread_count,
    verdicts,
)
from machine import cpu_model  # noqa: E402
from page_client import crowd  # noqa: E402

PAGES = ("histograms", "gan_2d", "compare")   # timed by the browser tabs
RELEASE_S = 90     # longest wait for the visitors' sessions to be released after they leave (TTL 60 s)
# A tab opens a page every 8 s, as a student might, not back to back: loading pages without a pause, the
# box's own browser took 0.50-0.58 of its 2 cores, which a classroom's browsers, on the students' laptops,
# do not take from the server's box (and with it the training's share).
LOAD_EVERY_S = 8.0
POOL_IDLE_S = 10.5  # AnyIO ends a pooled thread idle for 10 s (its MAX_IDLE_TIME) when the pool is next used
REPLAYS = 2        # the replays the pages' defaults record on a first visit: the 2-D page's, Compare's preset
REPLAY_WAIT_S = 300
QUIET_S = 60.0     # after the load window: the visitors train on, no tab loads (the instrument idle)
QUIET_SETTLE_S = 3.0   # from the last tab load's end to the quiet stretch's start


def wait_for_replays(folder: Path, count: int, timeout: float) -> float | None:
    """Seconds until `folder` holds `count` replay files (None: not within `timeout`)."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if len(list(folder.glob("*.replay"))) >= count:
            return round(time.monotonic() - began, 1)
        time.sleep(1.0)
    return None


def classroom(visitors: int, private: int, ramp_s: float) -> list[tuple[str, str, str, float]]:
    """(run key's name, page, query, arrival in seconds) for each visitor: half of the shared ones on the
    2-D GAN page's defaults, half on Compare's default preset, the private ones a seed each; the three
    kinds interleaved, as a class arrives."""
    shared = visitors - private
    kinds = [[("2-D defaults", "gan_2d", "")] * (shared - shared // 2),
             [("Compare preset", "compare", "")] * (shared // 2),
             [(f"2-D seed {101 + i}", "gan_2d", f"seed={101 + i}") for i in range(private)]]
    arrivals = [v for wave in zip_longest(*kinds) for v in wave if v is not None]
    return [(*v, ramp_s * n / visitors) for n, v in enumerate(arrivals)]


def time_to_page(browser, url: str, path: str) -> float:
    """Seconds from opening a page in a fresh context until its title is shown and its script is idle."""
    if path == "histograms":
        return time_to_numbers(browser, url)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        start = time.monotonic()
        tab = context.new_page()
        tab.goto(f"{url}/{path}", wait_until="domcontentloaded", timeout=LOAD_MS)
        tab.wait_for_selector('[data-testid="stMain"] h1', timeout=LOAD_MS)
        tab.wait_for_selector(IDLE, timeout=LOAD_MS)
        return time.monotonic() - start
    finally:
        context.close()


def browser_cpu_s(server_pid: int) -> float:
    """CPU seconds of every chromium process alive now, with those of its children that have ended.

    The tabs time each page in a fresh context, whose renderer process starts and ends within the
    load window: counted by the pids seen at its start, their CPU went uncounted (into "not_ours").
    A renderer that ended is counted by its parent, which reaped it."""
    return sum(cpu_seconds(pid, reaped=True) for pid in process_groups(server_pid)["browser"])


def thread_names(pid: int) -> Counter:
    """The server's Python threads by name (py-spy dump, where it is installed; else nothing): which ones
    a leftover count is made of."""
    if shutil.which("py-spy") is None:
        return Counter()
    try:
        dump = subprocess.run(["py-spy", "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return Counter()
    names = re.findall(r'^Thread \S+ \([^)]*\): "(.*)"', dump, re.M)
    return Counter(re.sub(r"[-_]\d+(_\d+)?$", "-N", name) for name in names)   # ThreadPoolExecutor-0_3 -> -N


def loads_text(times: dict[str, list[float]]) -> str:
    """Each page's load times in the order they were taken ("histograms 3.49, 3.82; gan_2d ...")."""
    return "; ".join(f"{p} " + ", ".join(f"{t:.2f}" for t in ts) for p, ts in times.items())


def settled_thread_count(pid: int, url: str) -> int:
    """The server's threads as the next visitor finds them.

    The web server (Starlette) serves the app's files from AnyIO's thread pool, up to 28 threads
    (Streamlit's limit) when a page's files are fetched at once: a thread is parked after use, and
    those idle for 10 s are ended only when the pool is next used. Asking for the index page, as the
    next visitor's browser does first, POOL_IDLE_S after the last use lets the pool do that, so a
    parked thread is told from a leaked one (any other thread, the project's or the server's, counts).
    """
    time.sleep(POOL_IDLE_S)
    try:
        with urllib.request.urlopen(f"{url}/", timeout=30) as response:
            response.read()
    except OSError:
        pass   # the count below still says what is there
    return thread_count(pid)


def render_round(browser, url: str, times: dict[str, list[float]], until: float = math.inf,
                 every_s: float = 0.0) -> int:
    """Load each page once (none started after `until`), one load at most every `every_s` seconds; how
    many loads ended after `until` (under a load that was leaving: such a time is kept, and can only
    understate the load)."""
    late = 0
    for path in PAGES:
        if time.monotonic() >= until:
            break
        started = time.monotonic()
        times[path].append(time_to_page(browser, url, path))
        late += time.monotonic() > until
        time.sleep(max(0.0, min(started + every_s, until) - time.monotonic()))
    return late


class Sampler(threading.Thread):
    """/_stcore/health timed every second, and the RSS of the server and its workers every 2 s."""

    def __init__(self, url: str, server_pid: int):
        super().__init__(name="classroom-sampler", daemon=True)
        self.url, self.server_pid = url, server_pid
        self.health_ms: list[float] = []
        self.rss: list[tuple[float, float]] = []   # (when, MiB)
        self.stop = threading.Event()

    def run(self) -> None:
        tick = 0
        while not self.stop.wait(1.0):
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=30) as r:
                    r.read()
                self.health_ms.append(1000 * (time.perf_counter() - t0))
            except OSError:
                self.health_ms.append(30_000.0)
            if tick % 2 == 0:
                groups = process_groups(self.server_pid)
                pids = [self.server_pid, *groups["workers"], *groups["painter"]]
                self.rss.append((time.monotonic(), sum(rss_mb(p) for p in pids)))
            tick += 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--visitors", type=int, default=30, help="simulated visitors, all pressing Start")
    ap.add_argument("--minutes", type=float, default=3.0, help="the load window, after every visitor arrived")
    ap.add_argument("--private", type=int, default=None, help="visitors with a seed of their own (default: a third)")
    ap.add_argument("--ramp-s", type=float, default=10.0, help="seconds over which the visitors arrive")
    ap.add_argument("--lone-s", type=float, default=25.0, help="seconds of the lone private run, measured first")
    ap.add_argument("--idle-rounds", type=int, default=4, help="rounds of the three page loads on the idle box")
    ap.add_argument("--load-every-s", type=float, default=LOAD_EVERY_S,
                    help="seconds from the start of one timed page load to the next, idle and loaded alike")
    ap.add_argument("--quiet-s", type=float, default=QUIET_S,
                    help="seconds the visitors train on after the load window while no tab loads (0: none)")
    args = ap.parse_args()
    private = args.visitors // 3 if args.private is None else min(args.private, args.visitors)
    plan = classroom(args.visitors, private, args.ramp_s)
    keys = sorted({name for name, *_ in plan})
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {args.visitors} visitors ({private} private), "
          f"{len(keys)} distinct runs, {args.minutes:g} min of load", flush=True)

    from playwright.sync_api import sync_playwright

    import conftest as e2e  # the same server start/stop and chromium flags as the browser tests

    tmp = Path(tempfile.mkdtemp(prefix="explorer-classroom-"))
    proc, url, log_path = e2e.start_server(tmp)
    crowd_process = ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
    idle_times = {p: [] for p in PAGES}
    loaded_times = {p: [] for p in PAGES}
    out: dict = {}
    try:
        e2e.wait_healthy(url, proc, 120)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=e2e.CHROMIUM, headless=True, args=e2e.CHROMIUM_ARGS)
            try:
                render_round(browser, url, {p: [] for p in PAGES})            # warm-up: imports, caches
                # The warm-up's visits on the defaults start their replays' recordings (explorer/replays.py),
                # once per install: measured here, and waited for, so that the load is a classroom's day.
                out["replays_recorded_s"] = wait_for_replays(tmp / "cache" / "replays", REPLAYS, REPLAY_WAIT_S)
                print(f"replays of the 2-D defaults and Compare's preset recorded: {out['replays_recorded_s']} s",
                      flush=True)
                # One private run alone on the idle box (paused at the end, so it is not in the load).
                lone_until = time.monotonic() + args.lone_s
                lone = crowd_process.submit(crowd, url, [("lone", "gan_2d", "seed=99", 0.0)], lone_until, True)
                visit = lone.result(timeout=args.lone_s + 120)["visits"][0]
                first = visit.steps[0][0] if visit.steps else lone_until
                out["lone_steps_per_s"] = rate_in(visit.steps, first + 5.0, lone_until)
                print(f"lone private run: {out['lone_steps_per_s']:.1f} steps/s {visit.error}", flush=True)
                for _ in range(args.idle_rounds):
                    render_round(browser, url, idle_times, every_s=args.load_every_s)
                idle_threads = settled_thread_count(proc.pid, url)
                idle_names = thread_names(proc.pid)
                print(f"idle page loads (s): {loads_text(idle_times)}", flush=True)

                sampler = Sampler(url, proc.pid)
                sampler.start()
                begin = time.monotonic() + args.ramp_s + 5.0     # every visitor arrived and pressed Start
                window = (begin, begin + 60 * args.minutes)
                job = crowd_process.submit(crowd, url, plan, window[1] + args.quiet_s)
                while time.monotonic() < window[0]:
                    time.sleep(0.2)
                groups, health_from = process_groups(proc.pid), len(sampler.health_ms)
                cpu0, box0 = {**cpu_of(groups), "browser": browser_cpu_s(proc.pid)}, machine_cpu_s()
                # This script and its helpers (Playwright's driver, the visitors' process: told apart below).
                mine = [os.getpid(), *(p for p in children(os.getpid()) if p != proc.pid)]
                mine0 = {p: cpu_seconds(p) for p in mine}
                late = 0
                while time.monotonic() < window[1] - 2.0:
                    late += render_round(browser, url, loaded_times, window[1] - 2.0, args.load_every_s)
                cpu1, box1 = {**cpu_of(groups), "browser": browser_cpu_s(proc.pid)}, machine_cpu_s()
                mine1 = {p: cpu_seconds(p) for p in mine}
                print(f"loaded page loads (s), in order: {loads_text(loaded_times)}", flush=True)
                quiet = (max(window[1], time.monotonic() + QUIET_SETTLE_S), window[1] + args.quiet_s)
                quiet_share = None
                if quiet[1] - quiet[0] >= 10.0:
                    while time.monotonic() < quiet[0]:
                        time.sleep(0.2)
                    q0, qbox0 = {**cpu_of(groups), "browser": browser_cpu_s(proc.pid)}, machine_cpu_s()
                    while time.monotonic() < quiet[1]:
                        time.sleep(0.2)
                    q1, qbox1 = {**cpu_of(groups), "browser": browser_cpu_s(proc.pid)}, machine_cpu_s()
                    quiet_share = {**{k: round((q1[k] - q0[k]) / (qbox1[1] - qbox0[1]), 3) for k in q0},
                                   "idle": round(1 - (qbox1[0] - qbox0[0]) / (qbox1[1] - qbox0[1]), 3)}
                seen = job.result(timeout=300)
                health = sampler.health_ms[health_from:]
                rss = [mb for t, mb in sampler.rss if window[0] <= t <= window[1]]
                sampler.stop.set()
                browser.close()
            finally:
                if browser.is_connected():
                    browser.close()
        # The visitors have left: their sessions are released after server.disconnectedSessionTTL.
        release_end = time.monotonic() + RELEASE_S
        parked = thread_count(proc.pid)
        end_threads = settled_thread_count(proc.pid, url)
        while end_threads > idle_threads and time.monotonic() < release_end:
            end_threads = settled_thread_count(proc.pid, url)
        end_names = thread_names(proc.pid)
        print(f"server threads: {idle_threads} idle, {parked} as the visitors left, {end_threads} once they were "
              "released and the file pool was next used "
              f"({RELEASE_S - max(0.0, release_end - time.monotonic()):.0f} s after the load); more by name: "
              f"{dict(end_names - idle_names)}, fewer: {dict(idle_names - end_names)}", flush=True)
        groups = process_groups(proc.pid)
        workers = groups["workers"] + groups["painter"]   # every process the server started
    finally:
        crowd_process.shutdown(cancel_futures=True)
        e2e.stop_server(proc)
    ended = time.monotonic() + 15
    while any(alive(p) for p in workers) and time.monotonic() < ended:
        time.sleep(0.5)
    left = [p for p in workers if alive(p)]
    for pid in left:   # ours: end them so the box is left clean, after counting them
        os.kill(pid, 9)
    shutil.rmtree(tmp, ignore_errors=True)

    seconds = window[1] - window[0]
    visits = seen["visits"]
    rates = {v: rate_in(v.steps, *window) for v in visits}
    refused = [v for v in visits if v.refusals or v.error or rates[v] == 0]
    advancing = {v.name for v in visits if rates[v] > 0}
    on_box = [n for v in visits for t, n in v.on_box if t >= window[0] + seconds / 2]
    private_rates = [rates[v] for v in visits if v.name.startswith("2-D seed")]
    quiet_rates = [rate_in(v.steps, *quiet) for v in visits if v.name.startswith("2-D seed")] if quiet_share else []
    by_key = {k: [round(rates[v], 1) for v in visits if v.name == k] for k in keys}
    for k, rs in by_key.items():
        print(f"  {k:<16}: steps/s seen by its {len(rs)} visitor(s) {rs}; most 'shared with' "
              f"{max(v.shared_with for v in visits if v.name == k)}")
    if quiet_share:
        print(f"  private runs while no tab loaded ({quiet[1] - quiet[0]:.0f} s): steps/s "
              f"{sorted(round(r, 1) for r in quiet_rates)}; the box's CPU then: {quiet_share}")
    for v in refused:
        print(f"  refused {v.name}: {v.refusals[:1] or v.error or 'no step counted in the window'}")
    idle_p95 = {p: p95(ts) for p, ts in idle_times.items()}
    loaded_p95 = {p: p95(ts) for p, ts in loaded_times.items()}
    first_third, last_third = thirds(rss)
    cores = os.cpu_count() or 1
    bench_s = sum(mine1[p] - mine0[p] for p in mine if p != seen["pid"])
    result = {
        "cpu": cpu_model(), "cores": cores, "visitors": args.visitors, "private": private,
        "minutes": args.minutes, "load_every_s": args.load_every_s, "distinct_keys": len(keys),
        "render_p95_ratio": round(max(loaded_p95[p] / idle_p95[p] for p in PAGES), 3),
        "render_p95_idle_s": {p: round(x, 3) for p, x in idle_p95.items()},
        "render_p95_loaded_s": {p: round(x, 3) for p, x in loaded_p95.items()},
        "render_loads": {p: [len(idle_times[p]), len(loaded_times[p])] for p in PAGES},
        "render_loads_ending_after_the_load": late,
        "health_p95_ms": round(p95(health), 1), "health_max_ms": round(max(health, default=0.0), 1),
        "refused": len(refused),
        "runs_computing": len(advancing),
        "runs_on_box_said": max(on_box, default=0),
        "min_private_steps_per_s": round(min(private_rates, default=0.0), 2),
        "lone_steps_per_s": round(out["lone_steps_per_s"], 2),
        "private_steps_per_s": sorted(round(r, 1) for r in private_rates),
        # The same runs while no tab loaded (--quiet-s after the load window; see the module docstring).
        "quiet_s": round(quiet[1] - quiet[0], 1) if quiet_share else 0.0,
        "min_private_steps_per_s_tabs_idle": round(min(quiet_rates, default=0.0), 2),
        "private_steps_per_s_tabs_idle": sorted(round(r, 1) for r in quiet_rates),
        "cpu_share_tabs_idle": quiet_share,
        "shared_steps_per_s": {k: max(rs, default=0.0) for k, rs in by_key.items() if not k.startswith("2-D seed")},
        "rss_first_third_mb": round(first_third, 1), "rss_last_third_mb": round(last_third, 1),
        "rss_samples": len(rss),
        "leftover_processes": len(left),
        "leftover_threads": max(0, end_threads - idle_threads), "server_threads_idle_end": [idle_threads, end_threads],
        "server_threads_as_visitors_left": parked,
        "cpu_share": {**{k: round((cpu1[k] - cpu0[k]) / (seconds * cores), 3) for k in cpu0},
                      "visitors_process": round(seen["cpu_s"] / (seconds * cores), 3),
                      "bench_itself": round(bench_s / (seconds * cores), 3),
                      # The rest of the box: work that was not this benchmark's (the box is shared), and idle.
                      "not_ours": round(((box1[0] - box0[0]) - sum(cpu1[k] - cpu0[k] for k in cpu0) - seen["cpu_s"]
                                         - bench_s) / (box1[1] - box0[1]), 3),
                      "idle": round(1 - (box1[0] - box0[0]) / (box1[1] - box0[1]), 3)},
        # What a visitor asked of the server, a second (its fragment timers' reruns, the pictures it fetched).
        "fragment_reruns_per_visitor_s": round(sum(v.fragment_reruns / (window[1] - v.opened) for v in visits)
                                               / len(visits), 2),
        "pictures_per_visitor_s": round(sum(v.pictures / (window[1] - v.opened) for v in visits) / len(visits), 2),
    }
    result["targets_met"] = verdicts(result)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
