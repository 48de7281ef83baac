#!/usr/bin/env bash
# Set up, train the built-in digits CNN for a few seconds, and compile it for this machine's CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
OUT="${1:-out/quickstart}"
.venv/bin/edgetune zoo export digits-cnn --train-epochs 20 --train-seconds 60 -o "$OUT/digits-cnn.pt2"
# calibration and top-1 on the built-in digits set (note: it includes the rows the CNN was trained on)
.venv/bin/edgetune compile "$OUT/digits-cnn.pt2" --target host-cpu -o "$OUT/compiled" --calib digits --eval digits
