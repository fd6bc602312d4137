#!/usr/bin/env bash
# Issue 18.4: MLR-SNet transfer re-measured under the official protocol (the authors' nets with both
# LSTM cells and ours, against the tuned baselines; 4 tasks x 60 epochs x 3 seeds; 202 runs).
# The exact full command. Resumable: rerun to continue, finished runs are skipped. Two processes of one
# thread each (SHARDS=k for k); the last, unsharded pass runs whatever a shard left (none, normally)
# and writes the summaries. Estimated before starting (printed to logs/estimate.log): about 11.4 CPU
# hours measured on a loaded 2-core machine (PTB about 8 CPU minutes a run, the others 1.5-2).
set -uo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3 KERAS_BACKEND=tensorflow
export TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1
SHARDS=${SHARDS:-2}
OUT=reproductions/results/mlrsnet_transfer_official
mkdir -p "$OUT/logs"
python reproductions/mlrsnet_transfer.py --protocol official --estimate-only --out "$OUT" > "$OUT/logs/estimate.log" 2>&1
for ((i = 0; i < SHARDS; i++)); do
  python reproductions/mlrsnet_transfer.py --protocol official --shard "$i/$SHARDS" --out "$OUT" \
    > "$OUT/logs/shard$i.log" 2>&1 &
done
wait
python reproductions/mlrsnet_transfer.py --protocol official --out "$OUT" > "$OUT/logs/final.log" 2>&1
