"""Connect to a Dask scheduler, with the errors of the house (an install hint, a clear unreachable message).

Dask is an optional dependency (``pip install 'wassembed[dask]'``), imported only when these functions are
called.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from .._validation import check_number
from ..errors import ClusterError, InputError, explain, param

if TYPE_CHECKING:
    import distributed

__all__ = ["INSTALL_HINT", "connect"]

INSTALL_HINT = "pip install 'wassembed[dask]'  (installs dask[distributed])"


def _distributed():
    """Import ``dask.distributed`` lazily, with an install hint when it is missing."""
    try:
        import distributed
    except ImportError as exc:
        raise ClusterError(explain("Dask is not installed", expected="the dask[distributed] package",
                                   received=f"ImportError: {exc}", fix=INSTALL_HINT)) from None
    return distributed


def connect(address: str, *, timeout: float | None = None) -> distributed.Client:
    """Connect to a running Dask scheduler.

    Parameters
    ----------
    address : str
        Scheduler address, e.g. ``tcp://10.0.0.5:8786`` (``HOST:PORT`` means ``tcp://HOST:PORT``).
    timeout : float, optional
        Seconds to wait for the scheduler before giving up (default: Dask's own setting
        ``distributed.comm.timeouts.connect``, 30 s unless configured, e.g. with the environment variable
        ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s``).

    Returns
    -------
    distributed.Client
        A client that is not registered as the global default; close it when done.

    Raises
    ------
    InputError
        The address is malformed.
    ClusterError
        Dask is not installed (with the install command), or the scheduler did not answer in ``timeout``.

    Examples
    --------
    >>> connect("tcp://127.0.0.1:1", timeout=0.5)  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    wassembed.errors.ClusterError: cannot reach the Dask scheduler at tcp://127.0.0.1:1 ...
    """
    if not isinstance(address, str) or not address.strip():
        raise InputError(explain("bad Dask scheduler address", expected="tcp://HOST:PORT",
                                 received=repr(address), fix=f"e.g. {param('address', repr('tcp://127.0.0.1:8786'))}"))
    address = address.strip()
    if "://" not in address:
        address = "tcp://" + address
    distributed = _distributed()
    if timeout is None:
        import dask
        from dask.utils import parse_timedelta

        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")
    timeout = check_number("timeout", timeout, low=0, low_open=True, example=10)
    try:
        return _client(distributed, address, float(timeout))
    except ValueError as exc:  # unknown scheme, unparsable host:port
        raise InputError(explain("bad Dask scheduler address", expected="tcp://HOST:PORT",
                                 received=f"{address!r} ({exc})",
                                 fix=f"e.g. {param('address', repr('tcp://127.0.0.1:8786'))}")) from None
    except (OSError, TimeoutError) as exc:
        raise ClusterError(explain(f"cannot reach the Dask scheduler at {address}",
                                   expected=f"a scheduler answering within {timeout:g} s",
                                   received=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                                   fix="start it with `dask scheduler` (and workers with `dask worker ADDRESS`), "
                                       "check the address and firewall, or run without a cluster (local "
                                       "processes)")) from None


def _client(distributed, address: str, timeout: float) -> distributed.Client:
    """A connected, non-default ``distributed.Client``; on failure the exception, with the half-built client
    closed first.

    A client whose constructor fails (an unknown scheme, an unreachable scheduler) has already started its
    event-loop thread, and its status can stay "connecting". Left alone it is closed by its finaliser, whenever
    and in whichever thread the garbage collector runs: in a test suite, in the middle of another test that is
    starting a client, where it can deadlock. So the object is created first and its constructor run inside
    ``try``: on any failure it is closed and its loop thread stopped here, deterministically.
    """
    client = distributed.Client.__new__(distributed.Client)
    try:
        client.__init__(address, timeout=timeout, set_as_default=False)
    except BaseException:
        _dispose(client)
        raise
    return client


def _dispose(client) -> None:
    """Close a client whose start failed and stop its event-loop thread (best effort, never raises)."""
    with contextlib.suppress(Exception):
        client.close(timeout=5)  # a no-op when the failed start already set the status "closed"
    runner = getattr(client, "_loop_runner", None)  # that leaves the loop thread running: stop it too
    if runner is not None:
        with contextlib.suppress(Exception):
            runner.stop()
