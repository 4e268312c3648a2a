// Empty translation unit: quarry_test_pch exists only to build the precompiled header that the
// LibTorch test targets reuse (see tests/CMakeLists.txt).
