# GGUF export tests (issue 16). Included from tests/CMakeLists.txt.
#  quarry_export_gguf_tests   byte level against an independent reader written from the GGUF
#                             spec (unit/export/gguf_spec_reader.*): hand-computed blocks, whole
#                             RTN / GPTQ jobs read back, bit-exact weights, refusals (white-box)
#  quarry_gguf_runtime_tests  every GGUF type through a real llama.cpp (node-llama-cpp 3.21.1,
#                             tests/runtime/, installed by scripts/setup.sh): its mean NLL on the
#                             first 32 kjv-eval windows within 1% of `quarry eval` on the same
#                             file (ctest label "runtime"; fails, not skips, without node-llama-cpp)
quarry_add_test(quarry_export_gguf_tests
  SOURCES
    unit/export/gguf_bytes_test.cc
    unit/export/gguf_spec_reader.cc
  LIBS quarry_core
  TIMEOUT 900 COST 40
  TORCH_PCH)
target_include_directories(quarry_export_gguf_tests PRIVATE ${CMAKE_SOURCE_DIR}/core/src
                           ${CMAKE_SOURCE_DIR}/tests)
# The decoder computes Q4_1's d * q + m with two roundings, as ggml's C reference does.
set_source_files_properties(unit/export/gguf_spec_reader.cc PROPERTIES
                            COMPILE_OPTIONS -ffp-contract=off SKIP_PRECOMPILE_HEADERS ON)

quarry_add_test(quarry_gguf_runtime_tests
  SOURCES runtime/gguf_runtime_test.cc
  LIBS quarry_core nlohmann_json::nlohmann_json
  TIMEOUT 600 COST 30 LABELS runtime
  TORCH_PCH)
target_include_directories(quarry_gguf_runtime_tests PRIVATE ${CMAKE_SOURCE_DIR}/core/src)
add_dependencies(quarry_gguf_runtime_tests quarry)
