"""The one exception hierarchy: every user-facing failure is an EdgetuneError.

The CLI prints ``Error: <message>`` on one line and exits non-zero; messages say
what is wrong and what to do about it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

# What the `edgetune` command exits with (documented in the README): CI tells them apart.
EXIT_OK = 0
EXIT_ERROR = 1  # a tool failure: a model that does not load, a runtime that fails, no viable candidate
EXIT_USAGE = 2  # a bad option, argument or configuration value (click's usage errors and ConfigError)
EXIT_REGRESSION = 3  # `bench compare`: the gate found an entry slower, broken or missing



class EdgetuneError(Exception):
    """Base of every error edgetune reports to a user."""

    exit_code = EXIT_ERROR


class ConfigError(EdgetuneError):
    """A bad option, argument or configuration value."""

    exit_code = EXIT_USAGE


class TargetError(EdgetuneError):
    """A target YAML file is invalid."""


class UnknownTargetError(TargetError):
    """No target has the requested name."""


class TargetNotRunnableError(TargetError):
    """The target exists but cannot run on this machine."""


class ModelError(EdgetuneError):
    """A model file or factory cannot be loaded or understood."""


class InputShapeError(ModelError):
    """An input shape is missing, malformed or inconsistent with the model."""


class UnsupportedOperatorError(EdgetuneError):
    """A backend cannot lower an operator of the model."""


class RunnerError(EdgetuneError):
    """A runtime failed to build, load or run an artifact."""


class MissingDependencyError(EdgetuneError):
    """An optional dependency is not installed."""


class DatasetError(EdgetuneError):
    """A dataset is missing or malformed."""


class ResultsStoreError(EdgetuneError):
    """The results store cannot be opened or written."""


class RemoteError(RunnerError):
    """The RPC tracker or a board behind it cannot be reached, or a board failed mid-run."""


class InfeasibleError(EdgetuneError):
    """A model or design does not fit the target (memory, DSP slices, bandwidth); the message gives the numbers."""


def one_line(exc: BaseException, limit: int = 300, *, last: bool = False, skip: tuple[str, ...] = (),
             typed: bool = False) -> str:
    """The first non-empty line of an exception's message, cut to ``limit`` characters.

    ``last=True`` takes the last non-empty line instead: a TVM RPC error carries the remote
    traceback first and the board's own message last. Lines starting with one of ``skip`` (a
    library's boilerplate prefixes) are passed over unless no other line is left. ``typed=True``
    puts the exception's type name before the line (``ValueError: ...``), for errors that are not
    a library's own report (a backend bug). Falls back to the type name alone when the message is
    empty, so a user error never ends in a colon and nothing raises IndexError on an empty message.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if skip:
        lines = [line for line in lines if not line.startswith(skip)] or lines
    if not lines:
        return type(exc).__name__
    text = lines[-1] if last else lines[0]
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(exc).__name__}: {text}" if typed else text


@contextlib.contextmanager
def reraise_as(error: type[EdgetuneError], what: str, limit: int = 300) -> Iterator[None]:
    """Turn any non-edgetune exception raised inside into ``error(f"{what}: {one_line(exc)}")``.

    ``with reraise_as(RunnerError, "TVM build failed"): ...`` replaces the try/except/raise-from-None
    blocks that trim a library's message to one line. EdgetuneErrors and interrupts pass unchanged.
    """
    try:
        yield
    except EdgetuneError:
        raise
    except Exception as exc:
        raise error(f"{what}: {one_line(exc, limit)}") from None
