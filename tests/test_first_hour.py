"""The README's "First hour" walk-through, step by step, as a new lab member runs it from the clone.

Simulate a session, calibrate the demo decoder on it, run the calibrated decoder on the session
replayed live, measure its latency, open the dashboard (offscreen) on it; then the repository is as
it was: everything went to the user data directory (``RTBCI_HOME``) or the session folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from rtbci.home import SHIPPED_PROFILES

pytestmark = pytest.mark.slow

REPO = SHIPPED_PROFILES.parent


def _git_status() -> set[str]:
    """``git status --porcelain`` entries that rtbci could cause: new files anywhere, changes to
    the shipped profiles. Edits to tracked source files, and new ``.py`` and ``.md`` files, are
    left out: other developers may be editing this tree while the test runs, and rtbci writes no
    source or Markdown file (it writes .h5, .toml, .onnx, .json, .png, ...)."""
    result = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    entries = result.stdout.splitlines()
    new_files = {entry for entry in entries if entry.startswith("??") and not entry.endswith((".py", ".md"))}
    return new_files | {entry for entry in entries if entry[3:].startswith("profiles/")}


def _rtbci(env: dict[str, str], *arguments: str, timeout: float = 300.0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rtbci.cli", *arguments],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs a git checkout of rtbci"
)
def test_the_first_hour_runs_as_written_and_leaves_the_repository_as_it_was(tmp_path):
    before = _git_status()
    home = tmp_path / "home"
    env = {**os.environ, "RTBCI_HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    sessions = tmp_path / "first-hour"

    # 1. Simulate a session.
    simulated = _rtbci(env, "simulate", "--out", str(sessions), "--minutes", "3", "--session", "16")
    assert simulated.returncode == 0, simulated.stderr
    session = sessions / "sim-S0-d16.h5"
    assert str(session) in simulated.stdout and session.is_file()

    # 2. Calibrate the demo decoder on it: the new profile goes to the user data directory.
    calibrated = _rtbci(env, "calibrate", "--profile", "profiles/demo.toml", "--from", str(session))
    assert calibrated.returncode == 0, calibrated.stderr
    profile = home / "profiles" / "demo.toml"
    assert f"profile: wrote {profile}" in calibrated.stdout
    # This test's own stream names, so that no other rig or demo on this machine crosses it.
    tag = uuid.uuid4().hex[:8]
    profile.write_text(profile.read_text().replace('"rtbci-', f'"rtbci-{tag}-'))

    # 3. Run the calibrated decoder on the session, replayed live.
    replay = subprocess.Popen(
        [sys.executable, "-m", "rtbci.cli", "replay", str(session), "--profile", str(profile), "--loop"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        ran = _rtbci(env, "run", "--profile", str(profile), "--seconds", "5")
    finally:
        replay.terminate()
        replay.wait(30)
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.startswith(f"rtbci run: profile {profile}: decoder {home / 'models'}")
    assert "calibrated on sim-S0-d16" in ran.stderr.splitlines()[0]
    assert json.loads(ran.stdout)["bins"] > 100

    # 4. Replay it in real time for a latency report.
    report = tmp_path / "latency.json"
    measured = _rtbci(
        env, "latency", str(session), "--profile", str(profile), "--seconds", "5", "--json", str(report)
    )
    assert measured.returncode == 0, measured.stderr
    printed = measured.stdout.splitlines()
    assert printed[0].startswith(f"rtbci latency: profile {profile}") and "calibrated on" in printed[0]
    assert len(printed) <= 15 and any("bins decoded" in line for line in printed)
    assert json.loads(report.read_text())["bins"] > 100

    # 5. Open the dashboard on it, with the simulated rig streaming (offscreen, closing itself).
    shown = _rtbci(env, "demo", "--profile", str(profile), "--seconds", "3")
    assert shown.returncode == 0, shown.stderr
    assert "closed after" in shown.stdout and "calibrated on sim-S0-d16" in shown.stdout.splitlines()[-1]

    # The shipped profiles are untouched and no file was added to the repository.
    assert _git_status() - before == set()
