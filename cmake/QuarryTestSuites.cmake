# quarry_add_gtest_suites(TARGET TIMEOUT seconds [COST n] [ENVIRONMENT "VAR=value"]):
# registers one ctest test per GoogleTest *suite* of TARGET (run as
# `TARGET --gtest_filter=Suite.*`), discovered after each build with --gtest_list_tests, like
# gtest_discover_tests does per test.
#
# Why: every test process pays LibTorch's start-up (its static initialisers, ~0.9 s of CPU on the
# 2-core CI machine), so one process per test cost ~500 s of CPU over the ~550 tests, half of
# the suite's wall time. Suites of quick tests run as one process each; the slow, few-test
# binaries (service, pipeline, model) keep one process per test via gtest_discover_tests.
# A failing suite's output (--output-on-failure) names the failing tests.
set(_quarry_suites_script "${CMAKE_CURRENT_LIST_DIR}/QuarryTestSuitesAdd.cmake")

function(quarry_add_gtest_suites target)
  cmake_parse_arguments(ARG "" "TIMEOUT;COST;ENVIRONMENT" "" ${ARGN})
  set(ctest_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_suites.cmake")
  if(NOT ARG_COST)
    set(ARG_COST 0)
  endif()
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND "${CMAKE_COMMAND}"
            -D "TEST_EXECUTABLE=$<TARGET_FILE:${target}>"
            -D "TEST_WORKING_DIR=${CMAKE_CURRENT_BINARY_DIR}"
            -D "TEST_TIMEOUT=${ARG_TIMEOUT}"
            -D "TEST_COST=${ARG_COST}"
            -D "TEST_ENVIRONMENT=${ARG_ENVIRONMENT}"
            -D "CTEST_FILE=${ctest_file}"
            -P "${_quarry_suites_script}"
    BYPRODUCTS "${ctest_file}"
    VERBATIM)
  # Before the first build the file does not exist yet; ctest then simply finds no tests here.
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${ctest_file}")
endfunction()
