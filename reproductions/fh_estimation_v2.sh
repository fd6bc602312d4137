#!/usr/bin/env bash
# The whole fh_estimation_v2 study (issue 17.2), in the background: one process at one thread
# (the leaderboard holds the other core), JAX backend, nice'd. Resumable: rerun this script to
# continue; finished runs are skipped and summary.json / summary.md are rewritten every 10 runs
# and at the end. Commit reproductions/results/fh_estimation_v2/ as it fills. Extra arguments go
# to the script (e.g. --datasets fashion_mnist).
#
#   bash reproductions/fh_estimation_v2.sh            # start (or resume) in the background
#   tail -f reproductions/work/fh_estimation_v2/study.log
#   kill -- -$(cat reproductions/work/fh_estimation_v2/study.pid)   # stop (resume later)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=reproductions/results/fh_estimation_v2
LOGS=reproductions/work/fh_estimation_v2  # git-ignored (feature histories go there too)
mkdir -p "$LOGS"
if [ -f "$LOGS/study.pid" ] && kill -0 "$(cat "$LOGS/study.pid")" 2>/dev/null; then
  echo "The study is already running (pid $(cat "$LOGS/study.pid")); see $LOGS/study.log." >&2
  exit 1
fi
export TF_CPP_MIN_LOG_LEVEL=3 KERAS_BACKEND=jax
# One compute thread everywhere (XLA reads its flag when JAX starts; BLAS at import).
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
# setsid: the study is its own process group, so the kill above stops it and nothing else.
setsid nohup nice -n 10 python reproductions/fh_estimation_v2.py --threads 1 --out "$OUT" "$@" \
  >> "$LOGS/study.log" 2>&1 < /dev/null &
echo $! > "$LOGS/study.pid"
echo "Started (pid $!): $LOGS/study.log"
