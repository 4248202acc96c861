"""The one Lab Streaming Layer (LSL) layer; this module loads pylsl and keeps liblsl's log quiet.

Everything in rtbci that touches LSL (the engine, replay, the simulated rig, calibration
recording, benchmarks) goes through this package:

- :mod:`rtbci.lsl` (here) — loading pylsl/liblsl (:func:`require_pylsl`), with a clear message
  when liblsl cannot be found;
- :mod:`rtbci.lsl.info` — ``StreamInfo`` with described channels; LSL and numpy channel formats;
- :mod:`rtbci.lsl.resolve` — finding a profile's stream and checking it on connect;
- :mod:`rtbci.lsl.inlet` — one input pulled into preallocated buffers, with clock sync and recovery;
- :mod:`rtbci.lsl.outlet` — the decoder's kinematics outlet.

It sits on a low floor: pylsl, numpy and rtbci's base modules (``errors``, ``profile``,
``memory``), never the engine, replay, the simulator or training (``tests/test_layering.py``).

liblsl logs at INFO on stderr by default (``Loaded default config``, its ``git:`` build line).
:func:`require_pylsl` points liblsl at a configuration with ``[log] level = -1`` (warnings
and errors only) through the ``LSLAPICFG`` environment variable before liblsl reads its
configuration, unless:

- ``RTBCI_LSL_VERBOSE`` is set (``rtbci X --verbose`` sets it): liblsl's default log;
- ``LSLAPICFG`` is already set: the lab's own configuration, as it is;
- the configuration liblsl would find by itself (``./lsl_api.cfg``,
  ``~/lsl_api/lsl_api.cfg``, ``/etc/lsl_api/lsl_api.cfg``) has a ``[log]`` section.

A lab configuration without ``[log]`` is kept whole, with the quiet ``[log]`` added.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from types import ModuleType

from rtbci.errors import UserError

__all__ = ["LSL_CONFIG_ENV", "LSL_VERBOSE_ENV", "LiblslMissingError", "quiet_liblsl_log", "require_pylsl"]

LSL_CONFIG_ENV = "LSLAPICFG"
LSL_VERBOSE_ENV = "RTBCI_LSL_VERBOSE"
# loguru verbosity: -1 warnings and errors, -2 errors only, 0 INFO (liblsl's default).
_QUIET_LOG = "[log]\nlevel = -1\n"
_LOG_SECTION = re.compile(r"^\s*\[log\]", re.MULTILINE)

_INSTALL_HINT = (
    "pylsl >= 1.18.2 ships liblsl inside its Linux x86_64, macOS and Windows wheels "
    "(Linux needs glibc >= 2.35). Reinstall it with `pip install --force-reinstall "
    "'pylsl>=1.18.2'`; on another platform install liblsl from your package manager "
    "(e.g. `conda install -c conda-forge liblsl`, or the liblsl release for your OS) "
    "and point PYLSL_LIB at the library file."
)


class LiblslMissingError(UserError):
    """pylsl is installed but its liblsl shared library cannot be loaded."""


def _lab_config() -> Path | None:
    """The configuration file liblsl finds without LSLAPICFG, in its own search order."""
    candidates = (
        Path("lsl_api.cfg"),
        Path.home() / "lsl_api" / "lsl_api.cfg",
        Path("/etc/lsl_api/lsl_api.cfg"),
    )
    return next((path for path in candidates if path.is_file()), None)


def quiet_liblsl_log() -> Path | None:
    """Point liblsl (in this process and its children) at a configuration logging warnings and errors only.

    Must run before liblsl reads its configuration (its first call); :func:`require_pylsl` does.

    Returns
    -------
    Path or None
        The configuration file now in ``LSLAPICFG``; None where the log is left as it was
        (see the module docstring).
    """
    if os.environ.get(LSL_VERBOSE_ENV) or os.environ.get(LSL_CONFIG_ENV):
        return None
    lab = _lab_config()
    lab_text = lab.read_text(encoding="utf-8", errors="replace") if lab is not None else ""
    if _LOG_SECTION.search(lab_text):
        return None
    text = f"{lab_text.rstrip()}\n\n{_QUIET_LOG}" if lab_text.strip() else _QUIET_LOG
    # Named by its content, so that concurrent processes write the same file and never a part of it.
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"rtbci-lsl_api-{digest}.cfg"
    if not path.is_file():
        scratch = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        scratch.write_text(text, encoding="utf-8")
        os.replace(scratch, path)
    os.environ[LSL_CONFIG_ENV] = str(path)
    return path


def require_pylsl() -> ModuleType:
    """Import pylsl, liblsl's log quiet below warnings (:func:`quiet_liblsl_log`), and check that it answers.

    Returns
    -------
    module
        The ``pylsl`` module.

    Raises
    ------
    LiblslMissingError
        If pylsl or liblsl cannot be loaded, with how to install it.
    """
    quiet_liblsl_log()
    try:
        import pylsl

        pylsl.local_clock()
    except (ImportError, OSError, RuntimeError) as error:
        raise LiblslMissingError(f"cannot load liblsl ({error}). {_INSTALL_HINT}") from None
    return pylsl
