#!/usr/bin/env bash
# Set up (idempotent) and run the default test suite: everything but slow/gpu/rpc/postgres tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
exec .venv/bin/python -m pytest -n 2 -m "not slow and not gpu and not rpc and not postgres" "$@"
