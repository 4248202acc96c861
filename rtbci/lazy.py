"""Package namespaces that load their modules on first use.

A package whose public names live in heavy modules (torch) keeps a light ``__init__``: a
caller that needs one torch-free submodule (a config, a command's parser) does not pay for
the rest.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, public: dict[str, str]) -> tuple[Callable[[str], Any], list[str]]:
    """A module ``__getattr__`` and ``__all__`` for ``package``'s public names.

    Parameters
    ----------
    package
        The package's ``__name__`` (for the error message).
    public
        Public name -> the module that defines it.

    Returns
    -------
    tuple
        ``(__getattr__, __all__)``, to assign in the package's ``__init__``.
    """

    def load(name: str) -> Any:
        if name not in public:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(public[name]), name)

    return load, sorted(public)
