"""Quieting a library lasts for the block only: levels and handlers come back, also when the block raises."""

from __future__ import annotations

import logging

import pytest

from edgetune._quiet import quiet_logger


def test_quiet_logger_puts_the_level_and_the_handlers_back() -> None:
    root = logging.getLogger()
    before = (root.level, list(root.handlers))
    with quiet_logger():
        assert root.level == logging.ERROR
        root.addHandler(logging.NullHandler())  # what logging.basicConfig() leaves when a library logs via logging.info
    assert (root.level, root.handlers) == before


def test_quiet_logger_puts_a_named_logger_back_when_the_block_raises() -> None:
    logger = logging.getLogger("edgetune.tests.noisy")
    logger.setLevel(logging.DEBUG)
    with pytest.raises(RuntimeError):
        with quiet_logger("edgetune.tests.noisy", logging.WARNING):
            assert logger.level == logging.WARNING
            raise RuntimeError("the library failed")
    assert logger.level == logging.DEBUG
