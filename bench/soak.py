"""Soak test of a hosted demo: N visitors train 2-D GANs at once for M minutes. A script, not a CI test.

What it measures (all in this one run, so the ratios compare like with like):
  * memory: RSS of this process and of the worker processes that hold the runs, summed, sampled every
    --sample-s seconds, and whether it is flat: mean of the last third of the samples against the first;
  * leftovers: after every session is closed and the pool shut down, no worker process may remain;
  * responsiveness of a real `streamlit run` server on the same machine: time to fetch /_stcore/health
    and to render a page in headless chromium, idle (baseline) and while the sessions train;
  * throughput: generator steps per second summed over the sessions;
  * optionally (--browser-runs K) K browser tabs press Start on the 2-D GAN page, so the server's own
    workers train too; the server's RSS is sampled alongside.

The sessions are explorer.session.Session objects with the page's defaults (make_toy_trainer +
toy_snapshot, trained in this process's worker pool), polled like the page's live view polls them,
so idle pause never kicks in. (bench/app_overhead.py measures what one visitor sees in a browser.)

    python bench/soak.py                        # 4 sessions, 2 minutes
    python bench/soak.py --sessions 2 --minutes 1 --browser-runs 1
    python bench/soak.py --no-server            # sessions only (no streamlit, no browser)
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from explorer import session as session_mod  # noqa: E402
from explorer.pool import get_pool, shutdown_pool  # noqa: E402
from explorer.session import Session  # noqa: E402
from explorer.toy_training import (  # noqa: E402
    ToyConfig,
    make_toy_trainer,
    toy_snapshot,  # noqa: E402
)


def rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(current RSS, peak RSS) in MiB from /proc (Linux)."""
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, kb = line.split()[:2]
                values[key[:-1]] = int(kb) / 1024
    return values.get("VmRSS", float("nan")), values.get("VmHWM", float("nan"))


def runs_rss_mb() -> float:
    """RSS of this process and of its pool's worker processes (where the runs live), in MiB."""
    return rss_mb()[0] + sum(rss_mb(pid)[0] for pid in get_pool().pids())


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read().lower()
    except FileNotFoundError:
        return False


def timed_health(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=30) as r:
        r.read()
    return time.perf_counter() - t0


def timed_render(browser, url: str, path: str) -> float:
    """Seconds from navigation to a finished script run with content on screen, in a fresh tab."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        t0 = time.perf_counter()
        page.goto(f"{url}/{path}", wait_until="domcontentloaded", timeout=120_000)
        page.wait_for_selector('[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]',
                               timeout=120_000)
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=120_000)
        return time.perf_counter() - t0
    finally:
        context.close()


def summary(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(round(0.95 * (len(xs) - 1))))]
    return f"median {statistics.median(xs) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, max {xs[-1] * 1000:.0f} ms (n={len(xs)})"


def thirds(samples: list[float]) -> tuple[float, float]:
    k = max(1, len(samples) // 3)
    return statistics.mean(samples[:k]), statistics.mean(samples[-k:])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=4, help="simulated visitors training at once")
    ap.add_argument("--minutes", type=float, default=2.0, help="how long they train")
    ap.add_argument("--sample-s", type=float, default=10.0, help="seconds between RSS samples")
    ap.add_argument("--page", default="histograms", help="page whose render time is measured")
    ap.add_argument("--browser-runs", type=int, default=0, help="browser tabs training on the 2-D GAN page")
    ap.add_argument("--no-server", action="store_true", help="sessions only: no streamlit, no browser")
    args = ap.parse_args()

    print(f"soak: {args.sessions} sessions x {args.minutes:g} min on {os.cpu_count()} CPUs; "
          f"RSS sampled every {args.sample_s:g} s")
    session_mod.set_max_runs(max(1, args.sessions))   # the soak wants them all training at once

    server = browser = pw = None
    url = proc = None
    health_idle, render_idle, health_busy, render_busy = [], [], [], []
    tmp = Path(tempfile.mkdtemp(prefix="explorer-soak-"))
    try:
        if not args.no_server:
            from playwright.sync_api import sync_playwright

            import conftest as e2e  # the same server start/stop as the browser tests

            proc, url, log_path = e2e.start_server(tmp)
            e2e.wait_healthy(url, proc, 90)
            pw = sync_playwright().start()
            browser = pw.chromium.launch(executable_path=e2e.CHROMIUM, headless=True, args=e2e.CHROMIUM_ARGS)
            timed_render(browser, url, args.page)         # warm-up: imports, caches
            for _ in range(10):
                health_idle.append(timed_health(url))
            for _ in range(3):
                render_idle.append(timed_render(browser, url, args.page))
            print(f"baseline (idle): health {summary(health_idle)}; render /{args.page} {summary(render_idle)}")

        # ------------------------------------------------------------------ the sessions
        sessions = [Session(partial(make_toy_trainer, ToyConfig(seed=i)), toy_snapshot) for i in range(args.sessions)]
        for s in sessions:
            s.prepare()
        rss0 = runs_rss_mb()
        for s in sessions:
            if not s.start():
                print(f"  could not start a session: {s.message}")
        stop_polling = threading.Event()

        def poll() -> None:   # what each visitor's live view does, ~3 times a second
            while not stop_polling.is_set():
                for s in sessions:
                    s.latest()
                stop_polling.wait(0.3)

        poller = threading.Thread(target=poll, name="soak-poller", daemon=True)
        poller.start()

        tabs = []
        if browser is not None and args.browser_runs > 0:
            for _ in range(args.browser_runs):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                tab = context.new_page()
                tab.goto(f"{url}/gan_2d", timeout=120_000)
                tab.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=120_000)
                tab.get_by_role("button", name="Start").first.click()
                tabs.append(context)
            print(f"  {len(tabs)} browser tab(s) training on /gan_2d")

        samples, server_samples = [], []
        t_start = time.monotonic()
        end = t_start + 60 * args.minutes

        def sample() -> None:   # RSS at a steady pace, whatever the browser timing loop is doing
            while True:
                now = time.monotonic()
                rss = runs_rss_mb()
                samples.append(rss)
                line = f"  t={now - t_start:5.0f} s  RSS {rss:7.1f} MiB"
                if proc is not None:
                    srv = rss_mb(proc.pid)[0]
                    server_samples.append(srv)
                    line += f"  server RSS {srv:7.1f} MiB"
                steps = sum((s.latest().step if s.latest() is not None else 0) for s in sessions)
                frames = sum(len(s.frames()) for s in sessions)
                print(line + f"  steps {steps:,}  frames kept {frames}  states {sorted({s.state for s in sessions})}",
                      flush=True)
                if stop_polling.wait(args.sample_s) or time.monotonic() >= end:
                    return

        sampler = threading.Thread(target=sample, name="soak-sampler", daemon=True)
        sampler.start()
        while time.monotonic() < end:
            now = time.monotonic()
            if url is not None:
                health_busy.append(timed_health(url))
                if len(render_busy) < max(3, int(args.minutes * 3)) and (now - t_start) > 5:
                    render_busy.append(timed_render(browser, url, args.page))
            time.sleep(1.0)
        sampler.join(args.sample_s + 5)
        elapsed = time.monotonic() - t_start
        total_steps = sum(s.latest().step for s in sessions if s.latest() is not None)
        states = [s.state for s in sessions]

        # ------------------------------------------------------------------ stop, and count leftovers
        stop_polling.set()
        poller.join(5)
        for context in tabs:
            context.close()
        rss_now = runs_rss_mb()
        workers = get_pool().pids()
        t0 = time.perf_counter()
        for s in sessions:
            s.close()
        shutdown_pool()
        stop_s = time.perf_counter() - t0
        time.sleep(0.5)
        left = [pid for pid in workers if alive(pid)]
        first, last = thirds(samples)
        print("\nresults")
        print(f"  sessions                : {args.sessions}, states at the end of the soak {sorted(set(states))}")
        print(f"  throughput              : {total_steps:,} generator steps in {elapsed:.0f} s = "
              f"{total_steps / elapsed:.1f} steps/s over all sessions")
        print(f"  RSS before start        : {rss0:.1f} MiB; at the end {rss_now:.1f} MiB (this process + workers)")
        print(f"  RSS first vs last third : {first:.1f} -> {last:.1f} MiB ({100 * (last - first) / first:+.1f}%)"
              f" from {len(samples)} samples -> {'flat' if abs(last - first) / first < 0.05 else 'NOT flat'} (5% band)")
        if server_samples:
            sf, sl = thirds(server_samples)
            print(f"  server RSS first/last   : {sf:.1f} -> {sl:.1f} MiB ({100 * (sl - sf) / sf:+.1f}%)")
        print(f"  workers after shutdown  : {len(left)} of {len(workers)} left {left or ''}; "
              f"closing all took {stop_s:.2f} s")
        if url is not None:
            print(f"  health idle             : {summary(health_idle)}")
            print(f"  health while training   : {summary(health_busy)}")
            print(f"  render /{args.page} idle    : {summary(render_idle)}")
            print(f"  render while training   : {summary(render_busy)}")
            if render_idle and render_busy:
                print(f"  render slowdown (median): {statistics.median(render_busy) / statistics.median(render_idle):.2f}x")
        return 1 if left else 0
    finally:
        if browser is not None:
            browser.close()
        if pw is not None:
            pw.stop()
        if proc is not None:
            e2e.stop_server(proc)
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
