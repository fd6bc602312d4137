#!/usr/bin/env bash
# The project's test command (README, .ci/run): the whole suite on the
# TensorFlow backend, then the backend-neutral subset (marker `jax`) on JAX.
set -uo pipefail
cd "$(dirname "$0")/.."
export TF_CPP_MIN_LOG_LEVEL=3 PYTHONUNBUFFERED=1
status=0
# One pytest worker per core (PYTEST_WORKERS to change; 1 = serial), when pytest-xdist is installed.
workers=${PYTEST_WORKERS:-$(python -c "import os; print(len(os.sched_getaffinity(0)))")}
par=()
if [ "$workers" -gt 1 ] && python -c "import xdist" 2>/dev/null; then par=(-n "$workers" --dist worksteal); fi
echo "== lint-imports (the layering contracts in pyproject.toml)"
lint-imports || status=$?
echo "== pytest, TensorFlow backend (all tests, slow ones included)"
KERAS_BACKEND=tensorflow python -m pytest -q -p no:cacheprovider --durations=15 ${par[@]+"${par[@]}"} "$@" || status=$?
if python -c "import jax" 2>/dev/null; then
  echo "== pytest, JAX backend (tests marked jax)"
  KERAS_BACKEND=jax python -m pytest -q -p no:cacheprovider --durations=10 -m jax ${par[@]+"${par[@]}"} "$@"
  rc=$?
  # 5 = no test collected, acceptable for the subset only
  if [ $rc -ne 0 ] && [ $rc -ne 5 ]; then status=$rc; fi
else
  echo "jax is not installed: skipping the JAX-backend run (pip install -e '.[jax]')"
fi
exit $status
