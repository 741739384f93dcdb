"""Optional dependencies: import them with an install hint when they are missing.

Also keeps the exact stage free of torch: POT imports torch (and jax, cupy, tensorflow when installed) at
``import ot`` to offer them as backends, unless ``POT_BACKEND_DISABLE_<NAME>`` is set. The exact stage only
solves numpy problems, so the processes that run nothing else (the ``precompute`` and ``cache`` commands,
the local pool's workers) set those variables with :func:`exact_stage_only` before POT is imported. Plain
``import wassembed`` sets nothing: a library user's POT keeps its torch backend.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

from .errors import MissingDependencyError, explain

__all__ = ["GEOMLOSS_HINT", "LEARN_HINT", "POT_EXACT_ONLY_ENV", "check_learning_stack", "exact_stage_only",
           "import_learning_stack", "require"]

#: what to install for training and serving (torch + safetensors)
LEARN_HINT = 'pip install "wassembed[learn]"'
_LEARNING = ("torch", "safetensors")
#: what to install for the point-cloud reconstruction loss (GeomLoss's Sinkhorn divergence, in the learn extra)
GEOMLOSS_HINT = 'pip install "wassembed[learn]" (or pip install "geomloss>=0.3")'

#: environment that makes ``import ot`` skip its GPU/autodiff backends (names read in POT's ot/backend.py)
POT_EXACT_ONLY_ENV = {
    "POT_BACKEND_DISABLE_PYTORCH": "1",
    "POT_BACKEND_DISABLE_JAX": "1",
    "POT_BACKEND_DISABLE_CUPY": "1",
    "POT_BACKEND_DISABLE_TENSORFLOW": "1",
}


def require(module: str, hint: str, *, what: str) -> ModuleType:
    """Import ``module`` or raise :class:`~wassembed.errors.MissingDependencyError` saying what to install.

    Examples
    --------
    >>> require("nosuchmod", "pip install xyz", what="training")
    Traceback (most recent call last):
    ...
    wassembed.errors.MissingDependencyError: training needs nosuchmod, which is not installed; fix: pip install xyz
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] != module.split(".")[0]:
            raise
        raise MissingDependencyError(explain(f"{what} needs {module}, which is not installed",
                                             fix=hint)) from None


def check_learning_stack(what: str = "training and serving models") -> None:
    """Raise :class:`~wassembed.errors.MissingDependencyError` (with :data:`LEARN_HINT`) unless torch and
    safetensors import."""
    for dep in _LEARNING:
        require(dep, LEARN_HINT, what=what)


def import_learning_stack(module: str) -> ModuleType:
    """Import a wassembed module that needs torch, saying what to install when torch is missing."""
    check_learning_stack()
    return importlib.import_module(module)


def exact_stage_only() -> None:
    """Make a later ``import ot`` in this process (and its children) skip torch, jax, cupy and tensorflow.

    For processes that only run the exact stage (the exact-stage commands and their pool workers). Variables
    the user set are kept; once POT is imported this changes nothing in this process. GeomLoss (which POT
    imports when installed, and which imports torch) is made unimportable in this process.
    """
    for key, value in POT_EXACT_ONLY_ENV.items():
        os.environ.setdefault(key, value)
    # POT also imports GeomLoss when it is installed (ot.bregman), and GeomLoss imports torch: in a process
    # that has imported neither, a `None` entry makes POT's `import geomloss` fail as if it were absent.
    if "ot" not in sys.modules and "geomloss" not in sys.modules:
        sys.modules["geomloss"] = None
