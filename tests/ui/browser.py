"""Helpers of the browser tests: ``kakehashi ui`` served as its own process on 127.0.0.1 and
Playwright driving Debian's headless chromium (``/usr/bin/chromium``, installed by ``make
browser-bins``; never a downloaded browser) against it. Screens are saved under
``artifacts/screenshots/`` in the repository root."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kakehashi_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "kakehashi.cli.main", *args]


class Served:
    def __init__(self, url: str, secrets: dict[str, str], browser: Any) -> None:
        self.url, self.secrets, self.browser = url, secrets, browser

    def login(self, party: str) -> Any:
        """A fresh browser context (its own cookies) logged in as ``party``."""
        page = self.browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
        page.set_default_timeout(10_000)
        page.goto(self.url + "/login")
        page.select_option("select[name=party]", party)
        page.fill("input[name=secret]", self.secrets[party])
        page.click("#login")
        page.wait_for_url("**/inbox**")
        assert page.inner_text("#party") == party
        return page


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@contextmanager
def serve_ui(directory: Path) -> Iterator[Served]:
    """``kakehashi ui --dir DIRECTORY`` as a process and a headless chromium to drive it."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's chromium; run "
            "`make browser-bins` (as root: apt-get install chromium)",
            pytrace=False,
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: run `make venv` (dev extras)", pytrace=False)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (directory.parent / "ui.log").open("w")
    proc = subprocess.Popen(
        kakehashi_command("ui", "--dir", str(directory), "--port", str(port)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"kakehashi ui exited: {(directory.parent / 'ui.log').read_text()}")
            try:
                if httpx.get(url + "/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("kakehashi ui did not answer within 30 s")
            time.sleep(0.2)
        secrets = json.loads((directory / "ui-credentials.json").read_text())["parties"]
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            try:
                yield Served(url, secrets, browser)
            finally:
                browser.close()
        print(f"\nscreenshots: {SHOTS}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
