"""The one exception hierarchy: every user-facing failure is an EdgetuneError.

The CLI prints ``Error: <message>`` on one line and exits non-zero; messages say
what is wrong and what to do about it.
"""

from __future__ import annotations

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
