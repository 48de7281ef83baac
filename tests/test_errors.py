"""One-line user errors: one_line trims a library's message, reraise_as turns it into an edgetune error."""

from __future__ import annotations

import pytest

from edgetune.errors import ConfigError, ModelError, RunnerError, one_line, reraise_as


@pytest.mark.parametrize("message, expected", [
    ("bad shape", "bad shape"),
    ("\n  first line  \nsecond line", "first line"),
    ("", "ValueError"),  # the hand-trimmed copies raised IndexError here
    ("   \n\n", "ValueError"),
])
def test_one_line_is_the_first_non_empty_line_or_the_type_name(message: str, expected: str) -> None:
    assert one_line(ValueError(message)) == expected


def test_one_line_cuts_long_lines_and_can_take_the_last_or_skip_boilerplate() -> None:
    cut = one_line(RuntimeError("x" * 500), 200)
    assert len(cut) == 200 and cut.endswith("...")
    assert one_line(RuntimeError("Traceback:\n  frame\nTVMError: the board's message\n"), last=True) == \
        "TVMError: the board's message"
    assert one_line(RuntimeError("Exception from src/core.cpp:1\nCheck 'x' failed\nmissing weights"),
                    skip=("Exception from ", "Check '")) == "missing weights"
    assert one_line(RuntimeError("Check 'x' failed"), skip=("Check '",)) == "Check 'x' failed"  # nothing else left


def test_reraise_as_turns_library_errors_into_one_line_edgetune_errors() -> None:
    with pytest.raises(RunnerError, match=r"^TVM build failed: no kernel$") as raised:
        with reraise_as(RunnerError, "TVM build failed"):
            raise RuntimeError("no kernel\n  at frame 1\n  at frame 2")
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    with pytest.raises(ModelError, match=r"^cannot read: KeyError$"):
        with reraise_as(ModelError, "cannot read"):
            raise KeyError()


def test_reraise_as_passes_edgetune_errors_and_interrupts_unchanged() -> None:
    with pytest.raises(ConfigError, match="^as it was$"):
        with reraise_as(RunnerError, "TVM build failed"):
            raise ConfigError("as it was")
    with pytest.raises(KeyboardInterrupt):
        with reraise_as(RunnerError, "TVM build failed"):
            raise KeyboardInterrupt


def test_one_line_typed_names_the_exception_once() -> None:
    assert one_line(ValueError("bad\nmore"), typed=True) == "ValueError: bad"
    assert one_line(AssertionError(), typed=True) == "AssertionError"  # not "AssertionError: " nor twice
