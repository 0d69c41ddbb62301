"""The main job: ``infsh demo`` streams a real task from the embedded server and saves a real PNG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image


def _demo(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], bytes]:
    out = tmp_path / f"demo{len(extra)}.png"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "inferencesh",
            "demo",
            "--speed",
            "20",
            "--out",
            str(out),
            "--prompt",
            "a calm lake",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done, out.read_bytes()


def test_demo_streams_and_saves_a_png(tmp_path: Path) -> None:
    done, png = _demo(tmp_path)
    for status in ("received", "queued", "running", "uploading", "completed"):
        assert f"Status: {status}" in done.stdout
    assert "image saved to" in done.stdout
    image = Image.open(tmp_path / "demo0.png")
    assert image.format == "PNG" and image.size[0] > 0
    assert png.startswith(b"\x89PNG")


def test_flaky_demo_reconnects_and_gives_the_same_png(tmp_path: Path) -> None:
    _, steady = _demo(tmp_path)
    flaky_run, flaky = _demo(tmp_path, "--flaky")
    assert "reconnecting" in flaky_run.stderr
    assert flaky == steady
