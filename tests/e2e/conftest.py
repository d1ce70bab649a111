"""Real-browser fixtures: one `streamlit run` server and one headless chromium for the whole session.

The server runs in its own process group with a private cache folder and HOME, so the tests never
write outside a temp dir; it is killed (the whole group) when the session ends, even on failure.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("EXPLORER_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
# Without the background-networking flags chromium tries to reach Google and a closed network
# refuses it loudly; --no-sandbox because CI runs as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
STARTUP_TIMEOUT_S = 60
# The entry script, relative to the repo root (another one only to try the tests on a partial app).
APP_SCRIPT = os.environ.get("EXPLORER_E2E_SCRIPT", "streamlit_app.py")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so the page fixture knows whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def _require_browser() -> None:
    if Path(CHROMIUM).exists():
        return
    reason = f"chromium not found at {CHROMIUM} (install Debian's chromium or set EXPLORER_CHROMIUM)"
    if os.environ.get("CI"):
        pytest.fail(f"Browser tests need a browser in CI: {reason}.", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"streamlit was not healthy after {timeout:.0f} s")


def start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str, Path]:
    """Start `streamlit run streamlit_app.py` on a free port; returns (process, base URL, log path)."""
    port = free_port()
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HOME=str(home), EXPLORER_CACHE_DIR=str(tmp / "cache"),
               STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", PYTHONUNBUFFERED="1")
    env.pop("EXPLORER_LIVE_LOOP_S", None)   # the page tests' one frame a run (tests/conftest.py): not here
    env.update(extra_env or {})
    log_path = tmp / "streamlit.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", APP_SCRIPT, "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return proc, f"http://127.0.0.1:{port}", log_path


def stop_server(proc: subprocess.Popen) -> None:
    """Kill the server's whole process group (SIGTERM, then SIGKILL)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def server():
    """Base URL of a live `streamlit run streamlit_app.py` (killed at the end of the session)."""
    _require_browser()
    tmp = Path(tempfile.mkdtemp(prefix="explorer-e2e-"))
    proc, url, log_path = start_server(tmp)
    try:
        try:
            wait_healthy(url, proc, STARTUP_TIMEOUT_S)
        except RuntimeError as err:
            pytest.fail(f"{err}\n--- server log ---\n{log_path.read_text(errors='replace')[-4000:]}",
                        pytrace=False)
        yield url
    finally:
        stop_server(proc)
        server_log = log_path.read_text(errors="replace") if log_path.exists() else ""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS.parent / "streamlit-e2e.log").write_text(server_log)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server, request):
    """A fresh browser tab (own cookies, own Streamlit session) with generous timeouts."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    tab.base_url = server  # convenience for the tests
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.js_errors = errors
    try:
        yield tab
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:   # what the visitor saw when it failed
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            name = "".join(c if c.isalnum() or c in "-_" else "_" for c in request.node.name)
            try:
                tab.screenshot(path=str(SCREENSHOTS / f"FAILED-{name}.png"), full_page=True)
            except Exception as err:  # a dead page must not hide the real failure
                print(f"could not take the failure screenshot: {err}")
        context.close()
