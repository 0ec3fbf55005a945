# CUDA is optional but never silent:
#   AUTO - build the CUDA parts when nvcc is found, and say so either way;
#   ON   - nvcc is required; its absence is a fatal error naming this option;
#   OFF  - CPU only.
# predis.build_info()["cuda"] reports what was compiled.

set(PREDIS_HAVE_CUDA OFF)
if(NOT PREDIS_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # Architectures must be set before the language is enabled.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES ${PREDIS_CUDA_ARCHITECTURES})
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(PREDIS_HAVE_CUDA ON)
    message(STATUS "Predis: CUDA parts enabled (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, sm_${CMAKE_CUDA_ARCHITECTURES})")
  elseif(PREDIS_CUDA STREQUAL "ON")
    message(FATAL_ERROR "PREDIS_CUDA=ON but no CUDA compiler (nvcc) was found. "
                        "Install the CUDA toolkit or set PREDIS_CUDA=AUTO or OFF.")
  else()
    message(STATUS "Predis: no CUDA compiler found; building the CPU backend only (PREDIS_CUDA=AUTO)")
  endif()
else()
  message(STATUS "Predis: CUDA disabled (PREDIS_CUDA=OFF)")
endif()

function(predis_add_cuda target)
  if(PREDIS_HAVE_CUDA)
    # Two nvcc translation units (nvcc is slow: the kernels share one), the rest host C++.
    target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/csrc/cuda/device_info.cu
                                     ${PROJECT_SOURCE_DIR}/csrc/cuda/kernels.cu
                                     ${PROJECT_SOURCE_DIR}/csrc/cuda/device_arena.cpp
                                     ${PROJECT_SOURCE_DIR}/csrc/cuda/cuda_table.cpp)
    set_target_properties(${target} PROPERTIES CUDA_STANDARD 17 CUDA_STANDARD_REQUIRED ON
                                               CUDA_RUNTIME_LIBRARY Static)
    target_link_libraries(${target} PRIVATE CUDA::cudart_static)
    # Host code inside .cu files gets the same warnings as the C++ files; with PREDIS_WERROR
    # (CI) every nvcc warning, host or device, fails the build.
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
    if(PREDIS_WERROR)
      target_compile_options(${target} PRIVATE
                             $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Werror>)
    endif()
    target_compile_definitions(${target} PRIVATE PREDIS_WITH_CUDA=1
                                                 PREDIS_CUDA_VERSION="${CMAKE_CUDA_COMPILER_VERSION}")
  endif()
endfunction()
