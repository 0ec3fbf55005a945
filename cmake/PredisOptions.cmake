# Every Predis build option, declared once. Set from pip with
#   pip install . -Ccmake.define.PREDIS_CUDA=OFF
# or through the PREDIS_* environment variables that pyproject.toml maps.

set(PREDIS_CUDA "AUTO" CACHE STRING "Build the CUDA backend: AUTO (when nvcc is found), ON (required) or OFF")
set_property(CACHE PREDIS_CUDA PROPERTY STRINGS AUTO ON OFF)

option(PREDIS_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(PREDIS_WERROR "Treat compiler warnings as errors (CI sets this)" OFF)

set(PREDIS_CUDA_ARCHITECTURES "90" CACHE STRING "CUDA architectures to build for (Hopper is 90)")

if(NOT PREDIS_CUDA MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "PREDIS_CUDA must be AUTO, ON or OFF (got '${PREDIS_CUDA}')")
endif()

# A deliberate regression for proving the benchmark checks work (docs/benchmarks.md): every
# key lookup spins this many empty iterations. 0 (the default) compiles it out.
set(PREDIS_BENCH_SLOWDOWN "0" CACHE STRING "Spin iterations added to each lookup (benchmark-check tests only; 0 = off)")
if(NOT PREDIS_BENCH_SLOWDOWN MATCHES "^[0-9]+$")
  message(FATAL_ERROR "PREDIS_BENCH_SLOWDOWN must be a non-negative integer (got '${PREDIS_BENCH_SLOWDOWN}')")
endif()
