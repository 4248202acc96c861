"""``rtbci demo``: headless it decodes the simulated rig and prints bins, latency and R²; windowed
(offscreen) it closes by itself; either way no process is left behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import psutil
import pytest
from app_fixtures import random_artifact, write_unique_profile

from rtbci.cli import main
from rtbci.profile import load_profile
from rtbci.provenance import describe_decoder

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any(text in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


def run_demo(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rtbci.cli", "demo", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env=env,
    )


def test_headless_demo_prints_a_summary_and_exits_0(tmp_path):
    profile = write_unique_profile(tmp_path, random_artifact())
    result = run_demo("--headless", "--seconds", "4", "--profile", str(profile))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    bins = int(re.search(r"bins decoded\s+(\d+)", out).group(1))
    assert bins >= 120  # 4 s of 20 ms bins is 200
    assert re.search(r"bins decoded\s+\d+ of 200 ", out)
    assert re.search(r"decoding\s+4 s, after [\d.]+ s of start-up", out)
    for name in ("processing latency", "source latency"):
        latency = re.search(name + r"\s+p50 ([\d.]+) ms\s+p99 ([\d.]+) ms\s+max ([\d.]+) ms", out)
        p50, p99, worst = (float(value) for value in latency.groups())
        assert 0 < p50 <= p99 <= worst
    # The first line and the summary's last name the profile and the decoder (rtbci.provenance).
    decoder = describe_decoder(load_profile(profile))
    lines = out.splitlines()
    assert lines[0] == f"rtbci demo: {decoder}"
    assert lines[-1] == f"decoder             {decoder}"
    assert re.search(r"velocity R²\s+vel_x -?[\d.]+ vel_y -?[\d.]+ over \d+ bins", out)
    assert "noisy over 30 s" in out
    assert processes_mentioning(profile.stem) == []


def test_windowed_demo_closes_cleanly(tmp_path):
    profile = write_unique_profile(tmp_path, random_artifact())
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = run_demo("--seconds", "3", "--profile", str(profile), env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    bins = int(re.search(r"closed after (\d+) decoded bins", result.stdout).group(1))
    assert bins >= 100  # 3 s of 20 ms bins is 150
    decoder = describe_decoder(load_profile(profile))
    assert result.stdout.splitlines()[0] == f"rtbci demo: {decoder}"
    assert result.stdout.splitlines()[-1] == f"rtbci demo: closed; {decoder}"
    assert processes_mentioning(profile.stem) == []


def test_a_display_that_cannot_be_opened_falls_back_to_headless(tmp_path):
    """Qt would abort (exit 134) on a DISPLAY with no X server behind it; the demo says so and decodes."""
    profile = write_unique_profile(tmp_path, random_artifact())
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")
    }
    result = run_demo("--seconds", "2", "--profile", str(profile), env=env | {"DISPLAY": ":987"})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "rtbci demo: the X display DISPLAY=:987 cannot be opened: running headless"
    assert re.search(r"bins decoded\s+\d+", result.stdout)
    assert processes_mentioning(profile.stem) == []


def test_demo_without_a_model_says_what_is_missing(tmp_path, capsys):
    profile = tmp_path / "no-model.toml"
    text = write_unique_profile(tmp_path, random_artifact()).read_text()
    profile.write_text(text[: text.index("[model]")])
    assert main(["demo", "--headless", "--seconds", "1", "--profile", str(profile)]) == 2
    assert "no [model] section" in capsys.readouterr().err
