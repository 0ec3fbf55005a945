# Warnings and sanitizers for Predis's own targets only (never for pybind11 or CUDA headers).

function(predis_target_warnings target)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic>)
    if(PREDIS_WERROR)
      target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Werror>)
    endif()
  endif()
endfunction()

function(predis_target_sanitizers target)
  if(PREDIS_SANITIZE)
    # The extension is loaded by an uninstrumented python, so the ASan runtime must be
    # preloaded (LD_PRELOAD=$(gcc -print-file-name=libasan.so)); .ci/run does that.
    set(_flags -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${_flags}>)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
    target_compile_definitions(${target} PRIVATE PREDIS_SANITIZED=1)
  endif()
endfunction()
