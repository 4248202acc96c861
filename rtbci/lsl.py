"""Loading pylsl, with a clear message when its liblsl cannot be found."""

from __future__ import annotations

from types import ModuleType

from rtbci.errors import UserError

__all__ = ["LiblslMissingError", "require_pylsl"]

_INSTALL_HINT = (
    "pylsl >= 1.18.2 ships liblsl inside its Linux x86_64, macOS and Windows wheels "
    "(Linux needs glibc >= 2.35). Reinstall it with `pip install --force-reinstall "
    "'pylsl>=1.18.2'`; on another platform install liblsl from your package manager "
    "(e.g. `conda install -c conda-forge liblsl`, or the liblsl release for your OS) "
    "and point PYLSL_LIB at the library file."
)


class LiblslMissingError(UserError):
    """pylsl is installed but its liblsl shared library cannot be loaded."""


def require_pylsl() -> ModuleType:
    """Import pylsl and check that liblsl answers.

    Returns
    -------
    module
        The ``pylsl`` module.

    Raises
    ------
    LiblslMissingError
        If pylsl or liblsl cannot be loaded, with how to install it.
    """
    try:
        import pylsl

        pylsl.local_clock()
    except (ImportError, OSError, RuntimeError) as error:
        raise LiblslMissingError(f"cannot load liblsl ({error}). {_INSTALL_HINT}") from None
    return pylsl
