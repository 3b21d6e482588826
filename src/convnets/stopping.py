"""A stop asked for by a signal (Ctrl-C is SIGINT), honoured at the next safe point.

The handler (``request``) only records the signal. Long work calls ``check()`` where
stopping leaves everything resumable: a node's start, the end of a training, validation
or prediction batch, the next chunk or picture of a decoding or checking loop. Raising
from the handler itself lands wherever the interpreter happens to be, a finalizer or a C
library's callback included, where it is swallowed ("Exception ignored in ...") or leaves
the library's state corrupt. A second signal ends the process at once: the resume state
is kept, and the next run marks the unfinished MLflow run KILLED.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}  # 128 + the signal, as shells do

_requested: int | None = None


class Stopped(KeyboardInterrupt):
    """The run was asked to stop by a signal; raised at a safe point by ``check``."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def request(signum: int, frame: FrameType | None) -> None:
    """The signal handler: record the first signal; end the process on the second."""
    global _requested  # noqa: PLW0603 - the one piece of state a handler may set
    if _requested is None:
        _requested = signum
        return
    # os.write and os._exit are safe in a handler: nothing half-done is resumed from.
    os.write(2, b"\nStopped at once (second signal); the resume state is kept.\n")
    os._exit(EXIT_STATUS.get(signum, 128 + signum))


def requested() -> int | None:
    """The signal that asked to stop, if any."""
    return _requested


def check() -> None:
    """Raise ``Stopped`` if a signal asked to stop: call it only at a safe point."""
    if _requested is not None:
        raise Stopped(_requested)


def reset() -> None:
    """Forget a request (a new run in the same process, a test)."""
    global _requested  # noqa: PLW0603
    _requested = None
