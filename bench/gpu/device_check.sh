#!/usr/bin/env bash
# The one prepared device check: build Predis for sm_90 on the GPU machine, run the `gpu`
# tests and the core tests, and run the benchmark suites on that (quiet, 16-core) machine.
# Results land in $OUT (the device tool brings them back). Meant to finish in under 8 min.
#   bash bench/gpu/device_check.sh          everything
#   bash bench/gpu/device_check.sh table    only the CUDA table prototype (about a minute)
set -uo pipefail
what=${1:-all}
cd "$(dirname "$0")/../.." || exit 1
OUT=${OUT:-$(mktemp -d)}
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
log() { printf '\n== %s (%s)\n' "$1" "$(date -u +%T)"; }

log "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 --version; nproc

log "CUDA table prototype: differential check and throughput (bench/gpu/gpu_table_bench.cu)"
nvcc -O3 -std=c++17 -arch=sm_90 -Icsrc bench/gpu/gpu_table_bench.cu -o "$OUT/gtb.bin" \
  && timeout 240 "$OUT/gtb.bin" | tee "$OUT/gpu_table.json"
echo "exit status: ${PIPESTATUS[0]}"
rm -f "$OUT/gtb.bin"
[ "$what" = table ] && exit 0

log "build (PREDIS_CUDA=ON, sm_90)"
site=$(mktemp -d)
if ls .whl/*.whl >/dev/null 2>&1; then python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl; fi
PREDIS_CUDA=ON python3 -m pip install -q --no-deps --no-build-isolation -Cbuild-dir=build/device \
  --target "$site" . 2>&1 | tail -20 || { echo "build failed"; exit 1; }
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
python3 -c 'import json, predis; print(json.dumps({"build": predis.build_info(), "cuda": predis.cuda_devices()}, indent=1))' \
  | tee "$OUT/info.json"

log "gpu tests, then the core tests"
python3 -m pytest tests/gpu tests/core -q -p no:cacheprovider -x 2>&1 | tail -15 | tee "$OUT/tests.txt"

log "benchmarks"
PREDIS_BENCH_RING_ITEMS=50000000 timeout 150 python3 -m pytest bench/test_ring_bench.py -q \
  -p no:cacheprovider --benchmark-json="$OUT/ring.json" 2>&1 | tail -12
timeout 240 python3 -m pytest bench/test_cache_bench.py -q -p no:cacheprovider \
  -k "mget_arrays or get_into or dict_loop or predis_get or dict_get" \
  --benchmark-json="$OUT/cache.json" --benchmark-columns=median,ops 2>&1 | tail -40
log "done"
