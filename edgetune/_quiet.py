"""Silence libraries for the length of a block, and put everything back after it.

Nothing here changes the process for good: a library's logger level, the root logger's
handlers and fds 1 and 2 are restored when the block ends, whether it ends or raises.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from typing import Iterator, Optional


@contextlib.contextmanager
def quiet_fds() -> Iterator[None]:
    """Send fds 1 and 2 (and sys.stdout/err) to /dev/null for the duration of the block."""
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)
        os.dup2(devnull.fileno(), 2)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


@contextlib.contextmanager
def quiet_logger(name: Optional[str] = None, level: int = logging.ERROR) -> Iterator[None]:
    """Raise the level of logger ``name`` (None: the root logger) for the block; its level and handlers are put back after.

    The handlers matter for the root logger: a library calling ``logging.info(...)`` runs
    ``logging.basicConfig()`` when the root has no handler, which would leave a stderr handler
    behind for the rest of the process.
    """
    logger = logging.getLogger(name)
    saved_level, saved_handlers = logger.level, list(logger.handlers)
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(saved_level)
        logger.handlers = saved_handlers
