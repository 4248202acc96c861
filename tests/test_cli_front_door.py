"""The command line as a newcomer meets it: fast help, quiet liblsl, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rtbci.cli import all_commands
from rtbci.commands.train import HELP_DEFAULTS, SIZE_NAMES
from rtbci.home import SHIPPED_PROFILES
from rtbci.lsl import LSL_CONFIG_ENV, LSL_VERBOSE_ENV

HEAVY = ("torch", "onnxruntime", "numba", "h5py", "PySide6", "pyqtgraph")


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env or dict(os.environ)
    )


def _heavy_modules_after_help(argv: list[str]) -> list[str]:
    code = (
        "import contextlib, io, json, sys\n"
        "from rtbci.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as shown, contextlib.suppress(SystemExit):\n"
        f"    main({argv!r})\n"
        f"heavy = sorted({{name.split('.')[0] for name in sys.modules}} & set({HEAVY!r}))\n"
        "print(json.dumps({'help': shown.getvalue(), 'heavy': heavy}))\n"
    )
    result = _python(code)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert "usage: rtbci" in shown["help"]
    return shown["heavy"]


def test_rtbci_help_imports_no_heavy_dependency():
    assert _heavy_modules_after_help(["--help"]) == []


@pytest.mark.parametrize("command", list(all_commands()))
def test_a_subcommand_help_imports_no_heavy_dependency(command):
    assert _heavy_modules_after_help([command, "--help"]) == []


def test_train_help_shows_the_configs_own_defaults():
    from rtbci.train.distill import DistillConfig
    from rtbci.train.encoders import SIZES
    from rtbci.train.loop import LoopConfig
    from rtbci.train.pretrain import PretrainConfig

    assert HELP_DEFAULTS == {
        "steps": LoopConfig.steps,
        "batch_size": LoopConfig.batch_size,
        "lr": LoopConfig.lr,
        "reconstruction_weight": DistillConfig.reconstruction_weight,
        "context_per_subject": PretrainConfig.context_per_subject,
    }
    assert DistillConfig.context_per_subject == PretrainConfig.context_per_subject
    assert set(SIZE_NAMES) == set(SIZES)


_OUTLET = (
    "from rtbci.lsl import require_pylsl\n"
    "pylsl = require_pylsl()\n"
    "info = pylsl.StreamInfo('rtbci-log-test', 'Test', 1, 100.0, 'float32', 'log-test')\n"
    "outlet = pylsl.StreamOutlet(info)\n"
    "print('outlet ok')\n"
)


def _without_lsl_settings() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key not in (LSL_CONFIG_ENV, LSL_VERBOSE_ENV)}


def test_liblsl_logs_no_info_line_by_default_and_does_with_verbose(tmp_path):
    env = {**_without_lsl_settings(), "HOME": str(tmp_path)}  # no ~/lsl_api/lsl_api.cfg of this machine's
    quiet = subprocess.run(
        [sys.executable, "-c", _OUTLET], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path
    )
    assert quiet.returncode == 0 and "outlet ok" in quiet.stdout, quiet.stderr
    assert "INFO|" not in quiet.stderr and "git:" not in quiet.stderr

    verbose = subprocess.run(
        [sys.executable, "-c", _OUTLET],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, LSL_VERBOSE_ENV: "1"},
        cwd=tmp_path,
    )
    assert verbose.returncode == 0, verbose.stderr
    assert "INFO|" in verbose.stderr  # the level is liblsl's: what hides it is its configuration


def test_a_lab_lsl_configuration_is_kept_with_the_quiet_log_added(tmp_path):
    (tmp_path / "lsl_api.cfg").write_text("[lab]\nSessionID = rtbci-log-test\n")
    code = _OUTLET + "import os; print(open(os.environ['LSLAPICFG']).read())\n"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**_without_lsl_settings(), "HOME": str(tmp_path)},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "SessionID = rtbci-log-test" in result.stdout and "[log]\nlevel = -1" in result.stdout
    assert "INFO|" not in result.stderr


def _bad_profile(folder: Path) -> Path:
    text = (SHIPPED_PROFILES / "demo.toml").read_text().replace("bin_ms = 20.0", 'bin_ms = "twenty"')
    path = folder / "bad.toml"
    path.write_text(text)
    return path


# Each subcommand with a profile or a file to read, its arguments around that path.
_WITH_PROFILE = {
    "run": ["run", "--profile", "{}", "--seconds", "1"],
    "latency": ["latency", "{session}", "--profile", "{}"],
    "calibrate": ["calibrate", "--profile", "{}", "--from", "{session}"],
    "simulate": ["simulate", "--lsl", "--profile", "{}", "--seconds", "1"],
    "replay": ["replay", "{session}", "--profile", "{}", "--seconds", "1"],
    "demo": ["demo", "--headless", "--profile", "{}", "--seconds", "1"],
    "train": [
        "train",
        "head",
        "--profile",
        "{}",
        "--data",
        "{session}",
        "--out",
        "{out}",
        "--encoder",
        "x.pt",
    ],
}
_WITH_FILE = {
    "info": ["info", "{}"],
    "import": ["import", "{}", "--out", "{out}/imported.h5"],
    "replay": ["replay", "{}"],
    "latency": ["latency", "{}", "--profile", str(SHIPPED_PROFILES / "demo.toml")],
    "calibrate": ["calibrate", "--profile", str(SHIPPED_PROFILES / "demo.toml"), "--from", "{}"],
    "export": ["export", "--checkpoint", "{}", "--out", "{out}/artifact"],
    "run": ["run", "--profile", "{}"],
}


def _rtbci(arguments: list[str], path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    session = tmp_path / "missing-session.h5"
    argv = [arg.format(path, session=session, out=tmp_path) for arg in arguments]
    code = f"import sys\nfrom rtbci.cli import main\nsys.exit(main({argv!r}))\n"
    return _python(code, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})


def _assert_one_line_error(result: subprocess.CompletedProcess, command: str, names: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"rtbci {command}: error: "), result.stderr
    assert names in lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(_WITH_PROFILE))
def test_a_bad_profile_is_one_error_line_and_exit_code_2(command, tmp_path):
    profile = _bad_profile(tmp_path)
    result = _rtbci(_WITH_PROFILE[command], profile, tmp_path)
    _assert_one_line_error(result, command, str(profile))
    assert "features.bin_ms" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", sorted(_WITH_FILE))
def test_a_missing_file_is_one_error_line_and_exit_code_2(command, tmp_path):
    missing = tmp_path / "no-such-file.h5"
    result = _rtbci(_WITH_FILE[command], missing, tmp_path)
    _assert_one_line_error(result, command, str(missing))


@pytest.mark.slow
def test_the_app_names_its_profile_and_decoder_first_and_when_it_closes(tmp_path):
    from app_fixtures import random_artifact, write_unique_profile

    from rtbci.profile import load_profile
    from rtbci.provenance import describe_decoder

    profile = write_unique_profile(tmp_path, random_artifact())
    app = subprocess.Popen(
        [sys.executable, "-m", "rtbci.cli", "app", "--profile", str(profile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    try:
        first = app.stdout.readline()
        # The app says when its window (and so its SIGTERM handler) is up; a signal sooner would kill it.
        assert app.stdout.readline().startswith("rtbci app: window open")
        time.sleep(2.0)
        app.terminate()  # closes the window, as a click on its close button would
        out, err = app.communicate(timeout=60)
    finally:
        app.kill()
    decoder = describe_decoder(load_profile(profile))
    assert first == f"rtbci app: {decoder}\n"
    assert app.returncode == 0, err
    assert out.strip().splitlines()[-1] == f"rtbci app: closed; opened with {decoder}"


def _words(text: str) -> str:
    return " ".join(text.split())


def test_the_latency_words_are_defined_in_run_help_and_the_readme(capsys):
    from rtbci.cli import main
    from rtbci.glossary import DEFINITIONS

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    shown = _words(capsys.readouterr().out)
    readme = _words((SHIPPED_PROFILES.parent / "README.md").read_text())
    assert set(DEFINITIONS) == {"processing latency", "source latency", "late", "overdue", "gap", "outage"}
    for word, meaning in DEFINITIONS.items():
        assert _words(f"{word}: {meaning}") in shown
        assert _words(f"**{word}**: {meaning}") in readme


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path):
    """`rtbci info FILE | head -1`: the pipe closes before rtbci is done writing."""
    from rtbci.io.store import write_session
    from rtbci.sim import SimConfig, simulate_session

    path = tmp_path / "short.h5"
    write_session(path, simulate_session(SimConfig(), 0, 0, 0.05, 0))
    reader = subprocess.Popen(
        [sys.executable, "-m", "rtbci.cli", "info", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    reader.stdout.close()  # the reader is gone before the first line
    _, stderr = reader.communicate(timeout=120)
    assert reader.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr and b"BrokenPipeError" not in stderr
