#!/usr/bin/env bash
# One short check on a machine with an accelerator (or without: then on the CPU).
# Runs the JAX test subset on the device JAX finds, then W3/W4 training throughput,
# and prints one table. Usage: bash benchmarks/device_check.sh [python]
# Time: about 5 minutes on a 16-core machine with one GPU (compilation dominates).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-${PYTHON:-python}}
export PYTHONPATH="src:.${PYTHONPATH:+:$PYTHONPATH}"
# Cross-backend tests compare at float32 tolerances: no TF32 matrix products.
export JAX_DEFAULT_MATMUL_PRECISION=highest
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

platform=$("$PYTHON" -c "import jax; d = jax.devices(); print(d[0].platform, len(d), d[0].device_kind)" 2>/dev/null || echo "none 0 -")
echo "JAX devices: $platform"

# The JAX backend's tests (each compares JAX with the C and Numba results or a NumPy
# reference), on the accelerator; the distributed tests run on simulated CPU devices.
tests="tests/test_smoke_backends.py tests/test_update.py tests/test_float32_graphs.py tests/test_dense_embedding.py tests/test_model_train.py tests/test_distributed.py"
start=$(date +%s)
DANDELION_TEST_BACKENDS=jax timeout 420 "$PYTHON" -m pytest -q -p no:cacheprovider -n 4 $tests >"$out/tests.log" 2>&1
tests_rc=$?
tests_s=$(( $(date +%s) - start ))
summary=$(tail -1 "$out/tests.log")

timeout 240 "$PYTHON" -m benchmarks.distributed --accelerator --repeats 1 --steps 20 --out "$out/bench" >"$out/bench.log" 2>&1
bench_rc=$?

echo
echo "| check | result |"
echo "| --- | --- |"
echo "| devices | $platform |"
echo "| JAX tests (exit $tests_rc, ${tests_s} s) | $summary |"
if [ -f "$out/bench/table.md" ]; then
  echo "| benchmark (exit $bench_rc) | below |"
  echo
  cat "$out/bench/table.md"
else
  echo "| benchmark (exit $bench_rc) | $(tail -1 "$out/bench.log") |"
fi
if [ $tests_rc -ne 0 ]; then
  echo; echo "--- failing tests:"; grep -E "^(FAILED|ERROR)" "$out/tests.log" | head -20
fi
exit $(( tests_rc || bench_rc ))
