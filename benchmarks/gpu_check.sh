#!/usr/bin/env bash
# The GPU check of the CuPy backend, in one script (at most 8 minutes).
#
#   bash benchmarks/gpu_check.sh            # from the repository root
#
# Steps, each with its own time limit, each run even if an earlier one
# failed or hung; logs go to $OUT (default ./gpu-check-out):
#   0. versions, nvidia-smi, the packages that are there       versions.log
#   1. CUPY_TF32=1 python benchmarks/bench_gpu.py --quick       bench_gpu.log
#   2. CUPY_TF32=1 python benchmarks/bench_gpu_conv.py         bench_gpu_conv.log
#   3. python -m minirpn demo --backend cupy --minutes 1.4     demo.log, demo/
#   4. the CPU/GPU parity tests: python -m pytest tests/gpu    gpu-tests.log
#      (the model's tests first; this step gets what is left of 470 s)
# Needs no network. Set PYTHON to choose the interpreter (default python),
# DEMO_OUT the demo's folder (default $OUT/demo).
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check-out}"
PYTHON="${PYTHON:-python}"
mkdir -p "$OUT"
export PYTHONPATH=".:tests${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
STATUS=()

step() {  # step NAME SECONDS LOG COMMAND...: run with a time limit, tee the log
    local name=$1 limit=$2 log=$3
    shift 3
    echo "=== $name (at most ${limit} s): $*" | tee "$OUT/$log"
    local start=$SECONDS
    timeout -k 5 "$limit" "$@" 2>&1 | tee -a "$OUT/$log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && echo "=== $name: TIMED OUT after ${limit} s" | tee -a "$OUT/$log"
    echo "=== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$OUT/$log"
    STATUS+=("$name: exit $rc, $((SECONDS - start)) s")
}

versions() {
    date -u
    git log -1 --oneline 2>/dev/null || true
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi || true
    else
        echo "nvidia-smi: not found"
    fi
    "$PYTHON" -m pip list 2>/dev/null \
        | grep -i -E "numpy|numba|cupy|cuda|nvidia|torch|scipy|pillow|matplotlib|tqdm|hypothesis|pytest" \
        || echo "pip list: nothing matched (or no pip)"
    "$PYTHON" - <<'EOF'
import importlib.metadata as md, sys
import numpy
print("python", sys.version.split()[0], "| numpy", numpy.__version__,
      "| numpy has row_stack:", hasattr(numpy, "row_stack"))
for name in ("numba", "numba-cuda", "cupy-cuda12x", "cupy-cuda13x", "nvidia-cuda-nvcc-cu12",
             "torch", "torchvision"):
    try:
        print(f"  {name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"  {name}: not installed")
try:
    import cupy
    print("cupy", cupy.__version__, "device available:", cupy.cuda.is_available())
    from minirpn.cuda.launch import numba_cuda, _numpy_row_stack
    cuda = numba_cuda()  # the backend's import path: row_stack step, NVVM check
    print("numba.cuda from", cuda.__file__, "| numpy.row_stack is vstack now:",
          getattr(numpy, "row_stack", None) is numpy.vstack)
except Exception as exc:  # reported; the other steps still run
    print(f"GPU backend not ready: {type(exc).__name__}: {exc}")
EOF
}

export PYTHON OUT
export -f versions
step versions 25 versions.log bash -c versions
# TF32 on both sides, as torch's cuDNN convolutions are by default: the same
# arithmetic in the comparison (CUPY_TF32 is CuPy's own switch; the tests
# and the demo below run in plain float32)
# (the first CuPy process on a fresh machine also compiles CuPy's own kernels,
# which then stay in its on-disk cache: 60 s ran out in that state)
step bench 120 bench_gpu.log env CUPY_TF32=1 "$PYTHON" benchmarks/bench_gpu.py --quick
# the 3x3 convs path by path: winograd against im2col and cuDNN
step bench-conv 70 bench_gpu_conv.log env CUPY_TF32=1 "$PYTHON" benchmarks/bench_gpu_conv.py
# training is capped at 1.4 min, then dataset, numba compiles, evaluation
step demo 120 demo.log "$PYTHON" -m minirpn demo --backend cupy --minutes 1.4 \
    --out "${DEMO_OUT:-$OUT/demo}"
# the parity tests get what is left of 470 s (at least 120 s; they took 104 s
# on an H200), the model's first
LEFT=$((470 - SECONDS)); [ "$LEFT" -lt 120 ] && LEFT=120
step gpu-tests "$LEFT" gpu-tests.log "$PYTHON" -m pytest tests/gpu/test_gpu_model.py \
    tests/gpu/test_gpu_layers.py -q -p no:randomly -rfEs --durations=12

echo "=== summary (logs in $OUT)"
printf '  %s\n' "${STATUS[@]}" | tee "$OUT/summary.log"
grep -h -E "(passed|failed|skipped|error).* in [0-9.]+s" "$OUT/gpu-tests.log" | tail -1 \
    | sed 's/^/  tests: /'
sed -n '/^== minirpn (CuPy) \/ torchvision/,$p' "$OUT/bench_gpu.log" | sed 's/^/  bench: /'
sed -n '/^== whole model/,/^$/p' "$OUT/bench_gpu_conv.log" | sed 's/^/  bench-conv: /'
grep -h "mAP@0.5" "$OUT/demo.log" | tail -1 | sed 's/^/  demo: /'
exit 0
