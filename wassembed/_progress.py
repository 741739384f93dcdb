"""Progress on stderr that suits both a terminal and a log file.

On a terminal, :func:`progress` gives a tqdm bar (redrawn in place, with the rate and the ETA). When the
stream is not a terminal (a file, a pipe, a CI log), redrawing in place would write a carriage-return frame
ten times a second; instead one plain line is printed every ``interval`` seconds and one when the bar closes::

    precompute: 12,800/50,000 pairs (25.6 %), 410 pairs/s, ETA 1 min 31 s
    precompute: 50,000/50,000 pairs (100.0 %), 410 pairs/s, done in 2 min 2 s

Both kinds end their line when closed, so a message printed afterwards (an error, "Interrupted") starts on a
line of its own; :meth:`write` prints a message between updates without breaking the bar. Needs no numpy or
torch: the trainer, the demo and the exact stage share it.

Examples
--------
>>> import io
>>> log = io.StringIO()
>>> with progress(3, desc="demo", unit="pair", file=log) as bar:
...     bar.update(3)
>>> print(log.getvalue().strip())  # doctest: +ELLIPSIS
demo: 3/3 pairs (100.0 %), ... pairs/s, done in 0 s
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

__all__ = ["Progress", "format_duration", "progress"]

#: seconds between two lines when the stream is not a terminal (environment: WASSEMBED_PROGRESS_INTERVAL)
LOG_INTERVAL = 10.0
INTERVAL_ENV = "WASSEMBED_PROGRESS_INTERVAL"


def format_duration(seconds: float) -> str:
    """A duration for humans: ``"42 s"``, ``"1 min 31 s"``, ``"2 h 05 min"``.

    Examples
    --------
    >>> format_duration(91), format_duration(7500), format_duration(0.4)
    ('1 min 31 s', '2 h 05 min', '0 s')
    """
    s = int(round(max(seconds, 0.0)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


class Progress:
    """The interface of every progress display (a no-op one is used when progress is off).

    Methods
    -------
    update(n)
        ``n`` more units done.
    set_postfix(**values)
        Values shown after the counts (e.g. ``loss="0.12"``).
    write(message)
        Print ``message`` on a line of its own (the bar continues below it).
    close()
        End the display (idempotent); a closed display ends its line.
    """

    def update(self, n: int = 1) -> None:
        """Count ``n`` more units."""

    def set_postfix(self, **values: object) -> None:
        """Show ``values`` after the counts."""

    def write(self, message: str) -> None:
        """Print ``message`` on a line of its own (nothing when progress is off)."""

    def close(self) -> None:
        """End the display."""

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Lines(Progress):
    """Plain lines every ``interval`` seconds, and one at the end: no carriage return, no redrawing."""

    def __init__(self, total: int | None, desc: str, unit: str, file: TextIO, interval: float, leave: bool):
        self.total, self.desc, self.unit, self.file = total, desc, unit, file
        self.interval, self.leave = float(interval), leave
        self.n = 0
        self.postfix = ""
        self.t0 = self.last = time.monotonic()
        self.closed = False

    def update(self, n: int = 1) -> None:
        self.n += int(n)
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._line(now, final=False)

    def set_postfix(self, **values: object) -> None:
        self.postfix = ", ".join(f"{k} {v}" for k, v in values.items())

    def write(self, message: str) -> None:
        print(message, file=self.file, flush=True)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.leave and self.n:
            self._line(time.monotonic(), final=True)

    def _line(self, now: float, *, final: bool) -> None:
        elapsed = now - self.t0
        rate = self.n / elapsed if elapsed > 0 else 0.0
        units = self.unit + ("es" if self.unit.endswith(("s", "x", "ch", "sh")) else "s")
        parts = [f"{self.n:,}/{self.total:,} {units} ({100.0 * self.n / self.total:.1f} %)" if self.total
                 else f"{self.n:,} {units}", f"{rate:,.0f} {units}/s"]
        if final:
            done = self.total is None or self.n >= self.total
            parts.append(f"{'done' if done else 'stopped'} in {format_duration(elapsed)}")
        elif self.total and rate > 0:
            parts.append(f"ETA {format_duration((self.total - self.n) / rate)}")
        if self.postfix:
            parts.append(self.postfix)
        print(f"{self.desc}: {', '.join(parts)}", file=self.file, flush=True)


class _Bar(Progress):
    """A tqdm bar (terminals): counts, rate and ETA, redrawn in place; its line is ended when closed."""

    def __init__(self, total: int | None, desc: str, unit: str, file: TextIO, leave: bool, unit_scale: bool):
        from tqdm.auto import tqdm

        self.file, self.leave = file, leave
        self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, file=file, leave=leave,
                        smoothing=0.05, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def set_postfix(self, **values: object) -> None:
        self.bar.set_postfix(values, refresh=False)

    def write(self, message: str) -> None:
        self.bar.write(message, file=self.file)

    def close(self) -> None:
        self.bar.close()  # leave=True ends the line; leave=False clears it


def _is_terminal(file: TextIO) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def progress(total: int | None, *, desc: str, unit: str = "it", enabled: bool = True,
             file: TextIO | None = None, interval: float | None = None, leave: bool = True,
             unit_scale: bool = True) -> Progress:
    """A progress display on ``file`` (default: stderr) for ``total`` units.

    Parameters
    ----------
    total : int or None
        Units expected (None: unknown; no percentage or ETA).
    desc : str
        What is counted, printed first (``"precompute"``, ``"epoch 3/30"``).
    unit : str
        Singular name of a unit (``"pair"``, ``"batch"``); lines say ``pairs`` and ``pairs/s``.
    enabled : bool
        False gives a display that prints nothing.
    file : text stream, optional
        Where to print (default ``sys.stderr``, looked up when called).
    interval : float, optional
        Seconds between two lines when ``file`` is not a terminal (default: the environment variable
        ``WASSEMBED_PROGRESS_INTERVAL``, else 10).
    leave : bool
        Keep the bar (terminal) or print the final line (log) when closed.
    unit_scale : bool
        Terminal bars only: show ``12.8k`` instead of ``12800``.

    Returns
    -------
    Progress
        Use as a context manager, or call ``close()`` before printing anything else.
    """
    if not enabled:
        return Progress()
    file = sys.stderr if file is None else file
    if _is_terminal(file):
        return _Bar(total, desc, unit, file, leave, unit_scale)
    return _Lines(total, desc, unit, file, _interval() if interval is None else interval, leave)


def _interval() -> float:
    try:
        value = float(os.environ.get(INTERVAL_ENV, LOG_INTERVAL))
    except ValueError:
        return LOG_INTERVAL
    return value if value >= 0 else LOG_INTERVAL
