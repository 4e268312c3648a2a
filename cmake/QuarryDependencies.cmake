# Every dependency comes from a Debian 12 package installed by scripts/setup.sh.
find_package(Threads REQUIRED)
find_package(Torch REQUIRED)            # libtorch-dev
# A CUDA build needs a LibTorch built with CUDA too (Debian's libtorch-dev is CPU-only): having
# nvcc is not enough.
if(QUARRY_ENABLE_CUDA AND NOT CAFFE2_USE_CUDA)
  message(FATAL_ERROR "QUARRY_ENABLE_CUDA=ON but the LibTorch found (${Torch_DIR}) was built "
                      "without CUDA; point Torch_DIR at a CUDA LibTorch or configure with "
                      "-DQUARRY_ENABLE_CUDA=OFF")
endif()
find_package(absl CONFIG REQUIRED)      # libabsl-dev
find_package(Protobuf REQUIRED)         # libprotobuf-dev, protobuf-compiler
find_package(gRPC CONFIG REQUIRED)      # libgrpc++-dev, protobuf-compiler-grpc
find_package(nlohmann_json 3 REQUIRED)  # nlohmann-json3-dev
find_package(CLI11 CONFIG REQUIRED)     # libcli11-dev
find_package(SQLite3 REQUIRED)          # libsqlite3-dev
find_package(OpenSSL REQUIRED)          # libssl-dev (sha256 of artifacts)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)  # libsentencepiece-dev
if(QUARRY_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)   # libgtest-dev, libgmock-dev
endif()
if(QUARRY_BUILD_BENCH)
  find_package(benchmark CONFIG REQUIRED)  # libbenchmark-dev
endif()

find_program(QUARRY_GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

# LibTorch as one imported-style interface target; torch's compile flags (ABI macro) come with it.
add_library(quarry_torch INTERFACE)
target_link_libraries(quarry_torch INTERFACE ${TORCH_LIBRARIES})
target_include_directories(quarry_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
separate_arguments(_quarry_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
target_compile_options(quarry_torch INTERFACE ${_quarry_torch_flags})
