# Sources of core's numerics (formats, observers, fake/real quantization, packing).
# Included by core/CMakeLists.txt; paths are relative to core/.
set(QUARRY_NUMERICS_SOURCES
  src/numerics/formats.cc
  src/numerics/plan.cc
  src/numerics/reference/fp_elements.cc
  src/numerics/reference/int_grid.cc
  src/numerics/reference/block_formats.cc
  src/numerics/reference/fake_quantize_ref.cc
  src/numerics/kernels/kernels.cc
  src/numerics/kernels/transposed_codes.cc
  src/numerics/observers/range_params.cc
  src/numerics/observers/minmax_observers.cc
  src/numerics/observers/histogram_observer.cc
  src/numerics/observers/block_observers.cc
  src/numerics/observers/observer_factory.cc
  src/numerics/fake_quantize.cc
  src/numerics/code_packing.cc
  src/numerics/real_quantize.cc
  src/numerics/tensor_quantizer.cc
)

# Bit-exactness: a fused multiply-add would round differently from Quark's separate float32
# operations, so contraction is off for every numerics source (it is already off without FMA
# hardware flags; this keeps it off if someone adds -march=native).
set_source_files_properties(${QUARRY_NUMERICS_SOURCES} PROPERTIES COMPILE_OPTIONS "-ffp-contract=off")
# The fast kernels need the full auto-vectorizer (-O2 in GCC 12 only vectorizes "very cheap"
# loops) and -fno-trapping-math, without which GCC will not if-convert the selects in their loops.
# Neither changes a result: rounding stays IEEE round-to-nearest-even, no reassociation.
set_source_files_properties(src/numerics/kernels/kernels.cc src/numerics/kernels/transposed_codes.cc
  src/numerics/observers/range_params.cc
  PROPERTIES COMPILE_OPTIONS "-ffp-contract=off;-O3;-fno-trapping-math")
