#!/usr/bin/env bash
# Set up (idempotent) and run the default test suite: everything but slow and gpu tests (rpc and postgres tests run on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-system.sh
bash tools/setup.sh
exec .venv/bin/python -m pytest -n 2 -m "not slow and not gpu" "$@"
