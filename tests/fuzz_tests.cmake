# Fuzz regressions: every input that once crashed a fuzz target is kept in
# tests/fuzz/regressions/<target>/, named for what broke, and replayed here through the target's
# LLVMFuzzerTestOneInput, built with the main compiler and tests/fuzz/replay_main.cc instead of
# libFuzzer, so the README's test command guards each fix without clang. The fuzzing itself
# (clang, ASan + UBSan) is tests/fuzz/run.sh; docs/fuzzing.md.
# quarry_add_fuzz_replay(TARGET LIBS...): ctest fuzz_regressions.TARGET (label fuzz).
function(quarry_add_fuzz_replay target)
  set(name quarry_fuzz_replay_${target})
  add_executable(${name} fuzz/${target}_fuzz.cc fuzz/fuzz_util.cc fuzz/replay_main.cc)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/core/src)
  target_link_libraries(${name} PRIVATE ${ARGN} quarry_build_flags)
  add_test(NAME fuzz_regressions.${target}
           COMMAND ${name} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/regressions/${target})
  set_tests_properties(fuzz_regressions.${target} PROPERTIES TIMEOUT 120 LABELS fuzz
                       ENVIRONMENT "${QUARRY_TEST_ENVIRONMENT}")
endfunction()

quarry_add_fuzz_replay(config_json quarry_core)
quarry_add_fuzz_replay(safetensors quarry_core)
quarry_add_fuzz_replay(gguf quarry_core)
