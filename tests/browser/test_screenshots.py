"""The screenshots script runs (``python -m tests.browser.screenshots``):
a PNG of each page at a desktop's and a phone's width, nothing loaded from
outside 127.0.0.1, no page error, every page ready (exit 0)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.browser.screenshots import DESKTOP, PHONE, SHOTS

PNG = b"\x89PNG\r\n\x1a\n"


def test_the_script_takes_every_page_at_both_widths(browser: Any, tmp_path: Path) -> None:
    # (browser: skips, saying why, where chromium is missing, as every browser test)
    done = subprocess.run(
        [sys.executable, "-m", "tests.browser.screenshots", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    expected = {f"{s.name}{suffix}.png" for s in SHOTS for suffix in ("", "-phone")}
    assert {p.name for p in tmp_path.glob("*.png")} == expected
    for shot in SHOTS:
        for suffix, viewport in (("", DESKTOP), ("-phone", PHONE)):
            data = (tmp_path / f"{shot.name}{suffix}.png").read_bytes()
            assert data.startswith(PNG)
            width = int.from_bytes(data[16:20], "big")  # the IHDR chunk's width
            assert width == viewport["width"], (shot.name, suffix, width)
