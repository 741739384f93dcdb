"""What every step of the demo shares: the data and its split, the work sizes, a stopwatch.

Nothing here trains or serves: :func:`prepare` loads the data and fixes the split and sizes, and
:class:`DemoSetup` hands them to the steps; :class:`Stopwatch` and :func:`timed` measure them.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._sizes import demo_sizes, split_ranges

__all__ = ["DemoSetup", "Stopwatch", "header_numbers", "prepare", "say", "timed"]


@dataclass(frozen=True)
class DemoSetup:
    """The data, its train/test split by image index and the work sizes, shared by every step.

    Parameters
    ----------
    hs : wassembed.HistogramSet
        The images (on a pixel grid).
    out : pathlib.Path
        The report folder (created).
    sizes : dict
        Work sizes (:func:`wassembed.demo.demo_sizes`, with the overrides applied).
    seed : int
        Seeds the pair plans, the training and the picks of examples.
    device, workers, progress
        Passed on to training / serving, the exact precompute and both.
    train_range, test_range : str
        ``"A:B"`` image ranges of the training and test images.
    tiny : bool
        A few-second run (tiny sizes) whose numbers mean little.
    """

    hs: object
    out: Path
    sizes: dict
    seed: int
    device: str
    workers: int | None
    progress: bool
    train_range: str
    test_range: str
    tiny: bool = False

    @property
    def cut(self) -> int:
        """First test image (the training images are ``0:cut``)."""
        return int(self.train_range.split(":")[1])

    @property
    def grid(self) -> tuple[int, int]:
        """Image shape ``(H, W)``."""
        return tuple(self.hs.grid)

    @property
    def weights(self) -> np.ndarray:
        """All the histograms, ``(n, H·W)``."""
        return self.hs.weights

    @property
    def has_labels(self) -> bool:
        """Whether the data carries class labels."""
        return self.hs.labels is not None

    @property
    def labels(self) -> np.ndarray:
        """Class labels (all zero when the data has none)."""
        return self.hs.labels if self.has_labels else np.zeros(self.hs.n, dtype=np.int64)

    @property
    def test_idx(self) -> np.ndarray:
        """Indices of the test images."""
        return np.arange(self.cut, self.hs.n)

    def images(self, w) -> np.ndarray:
        """Histograms ``(..., H·W)`` as float64 images ``(..., H, W)``."""
        return np.asarray(w, dtype=np.float64).reshape(*np.shape(w)[:-1], *self.grid)


def prepare(data, out: Path, *, seed: int, device: str, tiny: bool, train_pairs: int | None,
            epochs: int | None, workers: int | None, progress: bool) -> DemoSetup:
    """Load ``data``, check it holds images, and fix the split and the work sizes.

    Returns
    -------
    DemoSetup

    Raises
    ------
    wassembed.errors.InputError
        The data are not images on a pixel grid, or there are too few of them.
    """
    import wassembed

    out.mkdir(parents=True, exist_ok=True)
    hs = wassembed.load_dataset(data)
    if hs.grid is None:
        from ..errors import InputError, explain

        raise InputError(explain("the demo draws images", expected="images on a pixel grid",
                                 received=f"histograms on a {hs.support_kind} support",
                                 fix="use the Python API for non-image data"))
    sizes = demo_sizes(hs.k, tiny)
    if train_pairs is not None:
        sizes["train_pairs"] = int(train_pairs)
    if epochs is not None:
        sizes["epochs"] = int(epochs)
    train_range, test_range = split_ranges(hs.n)
    return DemoSetup(hs=hs, out=out, sizes=sizes, seed=int(seed), device=device, workers=workers,
                     progress=progress, train_range=train_range, test_range=test_range, tiny=bool(tiny))


def header_numbers(setup: DemoSetup) -> dict:
    """The numbers that describe the run before it starts: data, sizes, seed, versions, threads."""
    import torch

    import wassembed

    hs, (H, W) = setup.hs, setup.grid
    return {"dataset": {"name": hs.name, "n": hs.n, "grid": [H, W], "k": hs.k,
                        "train_images": setup.train_range, "test_images": setup.test_range},
            "sizes": dict(setup.sizes), "seed": setup.seed, "tiny": setup.tiny,
            "versions": {"wassembed": wassembed.__version__, "torch": torch.__version__,
                         "numpy": np.__version__, "python": sys.version.split()[0]},
            "torch_threads": torch.get_num_threads()}


class Stopwatch:
    """Wall and CPU (this process) seconds of successive steps, and the total since creation.

    Examples
    --------
    >>> clock = Stopwatch()
    >>> clock.start_laps()
    >>> clock.lap("step")
    >>> list(clock.wall), clock.total() >= clock.wall["step"] >= 0
    (['step'], True)
    """

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._start = time.perf_counter()
        self._mark = (self._start, time.process_time())

    def start_laps(self) -> None:
        """Start the first lap now (the total still counts from creation)."""
        self._mark = (time.perf_counter(), time.process_time())

    def lap(self, name: str) -> None:
        """Record the time since the previous lap (or :meth:`start_laps`, or creation) under ``name``."""
        now, cpu = time.perf_counter(), time.process_time()
        self.wall[name], self.cpu[name] = now - self._mark[0], cpu - self._mark[1]
        self._mark = (now, cpu)

    def total(self) -> float:
        """Wall seconds since creation."""
        return time.perf_counter() - self._start


def timed(fn, *args, repeat: int = 1, **kw):
    """Best wall time of ``repeat`` calls (after one warm-up when repeating) and the last result."""
    if repeat > 1:
        fn(*args, **kw)
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        best = min(best, time.perf_counter() - t0)
    return best, out


def say(echo, msg: str) -> None:
    """``echo(msg)`` unless ``echo`` is None."""
    if echo is not None:
        echo(msg)
