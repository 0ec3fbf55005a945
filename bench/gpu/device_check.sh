#!/usr/bin/env bash
# The one prepared device check for the CUDA backend (issue 3), for the H200 machine.
# In one call of at most 8 minutes it:
#   1. builds Predis with PREDIS_CUDA=ON (sm_90 + PTX, warnings as errors),
#   2. runs `pytest -m gpu` (the differential CPU/CUDA test, device arrays, eviction, ...),
#   3. runs the GPU benchmarks (bench/gpu/cuda_cache_bench.py),
#   4. runs the core test suite, whose backend="auto" caches now land on the GPU,
# and writes results under $OUT: summary.txt, info.json, gpu_tests.xml/.txt, cuda_bench.json,
# core_tests.txt, build.txt.
#   bash bench/gpu/device_check.sh          everything
#   bash bench/gpu/device_check.sh gpu      steps 1 to 3 only
#   bash bench/gpu/device_check.sh profile  step 1, then bench/gpu/profile_calls.py
#   bash bench/gpu/device_check.sh table    only the kernel prototype (bench/gpu/gpu_table_bench.cu)
set -uo pipefail
what=${1:-all}
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-$(mktemp -d)}
export OUT PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
summary="$OUT/summary.txt"
log() { printf '\n== %s (%s)\n' "$1" "$(date -u +%T)" | tee -a "$summary"; }
note() { printf '%s\n' "$*" | tee -a "$summary"; }
start=$(date +%s)

command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
log "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt" | tee -a "$summary"
note "python: $(python3 --version 2>&1); cores: $(nproc); nvcc: $(nvcc --version | tail -1)"

if [ "$what" = table ]; then
  log "kernel prototype: differential check and throughput (bench/gpu/gpu_table_bench.cu)"
  nvcc -O3 -std=c++17 -arch=sm_90 -Icsrc bench/gpu/gpu_table_bench.cu -o "$OUT/gtb.bin" &&
    timeout 240 "$OUT/gtb.bin" | tee "$OUT/gpu_table.json"
  note "exit status: ${PIPESTATUS[0]}"
  rm -f "$OUT/gtb.bin"
  exit 0
fi

log "1. build (PREDIS_CUDA=ON, PREDIS_WERROR=ON, sm_90 + PTX)"
site=$(mktemp -d)
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl
fi
b0=$(date +%s)
if ! PREDIS_CUDA=ON PREDIS_WERROR=ON python3 -m pip install -q --no-deps --no-build-isolation \
  -Cbuild-dir=build/device --target "$site" . >"$OUT/build.txt" 2>&1; then
  tail -40 "$OUT/build.txt" | tee -a "$summary"
  note "BUILD FAILED"
  exit 1
fi
note "build took $(($(date +%s) - b0)) s"
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
python3 -c 'import json, predis; print(json.dumps({"build": predis.build_info(), "cuda": predis.cuda_devices()}, indent=1))' \
  >"$OUT/info.json"
python3 -c 'import predis, sys; d = predis.cuda_devices(); sys.exit(0 if d["devices"] else 1)' ||
  { note "NO USABLE DEVICE: $(cat "$OUT/info.json")"; exit 1; }

if [ "$what" = profile ]; then
  log "profile of each batch call (bench/gpu/profile_calls.py)"
  timeout 240 python3 bench/gpu/profile_calls.py --out "$OUT" 2>&1 | tail -150
  note "profile exit status: ${PIPESTATUS[0]}"
  exit 0
fi

log "2. pytest -m gpu"
timeout 200 python3 -m pytest tests/gpu -m gpu -q -p no:cacheprovider -rs \
  --junitxml="$OUT/gpu_tests.xml" >"$OUT/gpu_tests.txt" 2>&1
note "pytest -m gpu exit status: $?"
tail -25 "$OUT/gpu_tests.txt" | tee -a "$summary"

log "3. GPU benchmarks"
timeout 200 python3 bench/gpu/cuda_cache_bench.py --out "$OUT/cuda_bench.json" 2>&1 |
  tee "$OUT/cuda_bench.txt" | tee -a "$summary"
note "benchmark exit status: ${PIPESTATUS[0]}"

[ "$what" = gpu ] && { log "done in $(($(date +%s) - start)) s"; exit 0; }
left=$((460 - ($(date +%s) - start)))
log "4. core tests on the GPU machine (backend='auto' is 'cuda' here; ${left}s left)"
if [ "$left" -gt 30 ]; then
  timeout "$left" python3 -m pytest tests/core -q -p no:cacheprovider -m "not slow" \
    --maxfail=25 --deselect tests/core/test_ring_native.py >"$OUT/core_tests.txt" 2>&1
  note "core tests exit status: $?"
  tail -15 "$OUT/core_tests.txt" | tee -a "$summary"
else
  note "skipped: not enough time left"
fi
log "done in $(($(date +%s) - start)) s"
