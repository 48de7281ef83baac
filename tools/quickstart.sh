#!/usr/bin/env bash
# Set up, train the built-in digits CNN for a few seconds, compile it for this machine's CPU, then search for a network that fits a latency budget.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
OUT="${1:-out/quickstart}"
.venv/bin/edgetune zoo export digits-cnn --train-epochs 20 --train-seconds 60 -o "$OUT/digits-cnn.pt2"
# calibration and top-1 on the built-in digits set (note: it includes the rows the CNN was trained on)
.venv/bin/edgetune compile "$OUT/digits-cnn.pt2" --target host-cpu -o "$OUT/compiled" --calib digits --eval digits
# the search: networks + hyperparameters for digits under a latency budget (SQLite study in $OUT/search/study.db;
# run it again to resume), the top 3 measured on this CPU, the winner compiled into $OUT/search/compiled/
.venv/bin/edgetune search --target host-cpu --latency-budget-ms 0.15 --trials 10 --max-epochs 5 --runtime onnxruntime -o "$OUT/search"
