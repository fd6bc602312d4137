#!/usr/bin/env bash
# ARC controller v2, the whole run (issue 19.4; rule: reproductions/arc_v2_protocol.md), in the
# background: two generation shards on the v2 engine (JAX, one thread each), then
# reproductions/arc_v2.py on TensorFlow (v1's leaderboard records are TensorFlow, one thread):
# merge + reserve, 10 candidates x 300 epochs on two processes, held-out evaluation, the proxy
# selection, the 39 arc@lr/10 leaderboard cells on two processes, the decision. Every step is
# resumable: rerun this script to continue (finished chains, candidates and runs are skipped).
# It needs both cores: do not start it while the leaderboard grid runs (each would halve the other).
#
#   bash reproductions/arc_v2.sh               # prints the time estimate, starts (or resumes)
#   tail -f reproductions/work/arc_v2/run.log
#   kill -- -$(cat reproductions/work/arc_v2/run.pid)   # stop (resume later)
#
# Commit reproductions/results/arc_v2/ (candidates, heldout.json, proxy/, leaderboard/runs,
# decision.json, summary.md); the chains stay in reproductions/work/arc_v2/ (git-ignored, ~100 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=reproductions/work/arc_v2
OUT=reproductions/results/arc_v2
CHAINS=1120  # 70 groups of 16 chains: 10,080 decisions
# On a CPU the residual-CNN family (fashion_resnet) compiled no vmapped epoch within 6 minutes on
# one thread (measured 2026-12-01): it is left out unless ARC_V2_TASKS names it (a GPU run:
# ARC_V2_TASKS="mnist1d_mlp fashion_resnet friedman_mlp shakespeare_transformer").
ARC_V2_TASKS=${ARC_V2_TASKS:-"mnist1d_mlp friedman_mlp shakespeare_transformer"}
mkdir -p "$DATA"
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1
# One compute thread per process (XLA reads its flag when JAX starts; BLAS at import).
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1

# Runs "$@" as two processes i = 0, 1 (in the arguments SHARD becomes i/2 and INDEX i), each with
# its log $DATA/<log>i.log; fails if either fails.
on_two() {
  local log=$1; shift
  local pids=() args
  for i in 0 1; do
    args=("${@//SHARD/$i/2}")
    args=("${args[@]//INDEX/$i}")
    "${args[@]}" > "$DATA/$log$i.log" 2>&1 &
    pids+=($!)
  done
  local status=0
  for p in "${pids[@]}"; do wait "$p" || status=$?; done
  return $status
}

if [ "${1:-}" = "--pipeline" ]; then
  echo "== $(date -u +%FT%TZ) generation: $CHAINS chains, two shards (KERAS_BACKEND=jax)"
  on_two gen env KERAS_BACKEND=jax keras-autolr arc generate --engine vmap --out "$DATA/shardINDEX.h5" \
    --chains $CHAINS --shard SHARD --seed 0 --tasks $ARC_V2_TASKS
  export KERAS_BACKEND=tensorflow
  run=(python reproductions/arc_v2.py --threads 1 --out "$OUT" --data-dir "$DATA" --chains $CHAINS)
  echo "== $(date -u +%FT%TZ) merge and reserve the test groups"
  "${run[@]}" --stages merge
  echo "== $(date -u +%FT%TZ) 10 candidates, two processes"
  on_two train "${run[@]}" --stages train --shard SHARD
  echo "== $(date -u +%FT%TZ) held-out evaluation and proxy selection"
  "${run[@]}" --stages evaluate select
  echo "== $(date -u +%FT%TZ) arc@lr/10 leaderboard cells, two processes"
  on_two board "${run[@]}" --stages leaderboard --shard SHARD
  echo "== $(date -u +%FT%TZ) decision"
  "${run[@]}" --stages decide
  cat "$OUT/summary.md"
  exit 0
fi

if [ -f "$DATA/run.pid" ] && kill -0 "$(cat "$DATA/run.pid")" 2>/dev/null; then
  echo "The run is already going (pid $(cat "$DATA/run.pid")); see $DATA/run.log." >&2
  exit 1
fi
echo "Time still needed (one process per stage; the script prints the two-process wall time):"
KERAS_BACKEND=tensorflow python reproductions/arc_v2.py --estimate-only --out "$OUT" --data-dir "$DATA" --chains $CHAINS
# setsid: the run is its own process group, so the kill above stops it and nothing else.
setsid nohup nice -n 10 bash "$0" --pipeline >> "$DATA/run.log" 2>&1 < /dev/null &
echo $! > "$DATA/run.pid"
echo "Started (pid $!): $DATA/run.log"
