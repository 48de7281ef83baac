"""Silence libraries that print from C++ straight to file descriptors 1 and 2."""

from __future__ import annotations

import contextlib
import io
import os
from typing import Iterator


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
