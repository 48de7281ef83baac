#!/usr/bin/env bash
# Set up (idempotent), lint and type-check, and run the default test suite: everything but slow and gpu tests
# (rpc and postgres tests run on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-system.sh
bash tools/setup.sh
# lint (pyflakes, import order) and types first: seconds, and a failure names the line
.venv/bin/ruff check edgetune tests benchmarks tools
.venv/bin/mypy
exec .venv/bin/python -m pytest -n 2 -m "not slow and not gpu" "$@"
