"""Headless Chromium for the tests that look at pages and videos as a browser does (Debian's package,
installed by .ci/run); tests skip when it is absent."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium absent (apt-get install chromium)")

_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
          "--no-first-run", "--disable-sync", "--disable-quic"]

_PLAYER = """<!DOCTYPE html><html><body><video id="v" src="{src}" preload="auto" muted></video><pre id="out">pending</pre>
<script>
const v = document.getElementById('v'), out = document.getElementById('out');
function show() {{ out.textContent = 'readyState=' + v.readyState + ' duration=' + v.duration +
                                    ' error=' + (v.error ? v.error.code : 0); }}
for (const e of ['loadeddata', 'canplaythrough', 'error']) v.addEventListener(e, show);
</script></body></html>
"""


def chromium(args: list[str], profile: Path, timeout: float = 120) -> str:
    """Run headless Chromium with an empty profile folder ``profile``; returns its stdout."""
    cmd = [CHROMIUM, *_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, check=True, timeout=timeout, capture_output=True, text=True).stdout


def play(video: Path, tmp: Path) -> tuple[int, float, int]:
    """(readyState, duration s, MediaError code or 0) of ``video`` in a ``<video>`` element of a page next to it."""
    page = video.parent / f".play_{video.stem}.html"
    page.write_text(_PLAYER.format(src=video.name))
    try:
        dom = chromium(["--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()], tmp / "profile")
    finally:
        page.unlink()
    m = re.search(r"readyState=(\d+) duration=(\S+) error=(\d+)", dom)
    assert m, f"the page did not report: {dom[-500:]}"
    return int(m.group(1)), float(m.group(2)), int(m.group(3))
