"""Playwright driving Debian's Chromium (headless), for the browser tests.

Nothing is downloaded: Playwright's own browser builds are never installed; the tests use
/usr/bin/chromium (apt-get install chromium), or CHROMIUM_PATH. Without it the browser tests
are skipped with a message that says so.
"""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",  # the tests may run as root (CI does)
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_available() -> bool:
    return Path(CHROMIUM).exists()


requires_chromium = pytest.mark.skipif(
    not chromium_available(),
    reason=f"Chromium not found at {CHROMIUM}: browser tests skipped (apt-get install chromium)",
)
