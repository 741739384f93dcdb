"""Optional dependencies: import them with an install hint when they are missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError, explain

__all__ = ["LEARN_HINT", "import_learning_stack", "require"]

#: what to install for training and serving (torch + safetensors)
LEARN_HINT = 'pip install "wassembed[learn]"'
_LEARNING = ("torch", "safetensors")


def require(module: str, hint: str, *, what: str) -> ModuleType:
    """Import ``module`` or raise :class:`~wassembed.errors.MissingDependencyError` saying what to install."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != module.split(".")[0]:
            raise
        raise MissingDependencyError(explain(f"{what} needs {module}, which is not installed",
                                             expected=f"{module} importable", received="ModuleNotFoundError",
                                             fix=hint)) from None


def import_learning_stack(module: str) -> ModuleType:
    """Import a wassembed module that needs torch, saying what to install when torch is missing."""
    for dep in _LEARNING:
        require(dep, LEARN_HINT, what="training and serving models")
    return importlib.import_module(module)
