// Tensor quantization under a QuantizationSpec, exactly as AMD Quark computes it: observers that
// turn observed tensors into quantization parameters, fake quantization (quantize-dequantize in
// float), real quantization into packed storage, and dequantization back.
//
// Contracts (the detailed numeric contract is tests/data/oracle/INDEX.md; the scalar references
// in src/numerics/reference/ document every formula and edge case):
// - Every format has a plain scalar reference (quarry::numerics::ref) and a fast path; fast paths
//   are tested against the reference with a named error bound (bit-exact for every format here).
// - Parameter shapes: per_tensor -> scale []; per_channel on axis a -> [x.size(a)];
//   per_group / MX / MX6 / MX9 / BFP16 with group size g along axis a -> x's shape with dim a
//   replaced by ceil(x.size(a) / g) (a tail group shorter than g is allowed, for integer
//   per_group too, where Quark raises; MX pads it with zeros for its amax). group_size -1 is the
//   whole axis; BFP16 always uses blocks of 8 (Quark); MX6/MX9 need an even block size.
// - Scales are float32 (MX/BFP: the power of two 2^e as float32; scale_type float16 / bfloat16
//   rounds them to that precision). Zero points are int32 or float32 per zero_point_type; float
//   formats and MX have an undefined zero_point. Scales are computed in float32 from the exact
//   input values whatever the input dtype (Quark computes bf16/fp16 inputs' scales in that dtype).
// - Dequantize(Quantize(x)) == FakeQuantize(x) bit for bit. Quark's real_quantize rounds
//   round(x/s + zp) while its fake quantize rounds round(x/s) + zp; they differ on exact ties when
//   zp is odd. We use the fake-quant rounding for both, so a deployed model computes what
//   calibration saw. Exceptions: float32 zero points (fake quantization's round(x/s) + zp is not
//   an integer, so codes use Quark's real rounding); values with no code (NaN in integer formats
//   -> 0, NaN / +-Inf in fp4 / fp6 -> 0 / +-max); MX6/MX9 blocks with exponent 127.
//   MX scales must be powers of two within E8M0's range (2^-127..2^127) or NaN; others are an
//   InvalidArgument from Quantize. Dequantize returns float32.
// - NaN/Inf inputs never crash; they propagate as Quark's reference does, except where Quark is
//   undefined (its per_tensor integer CPU kernel casts NaN/Inf to int64): integer formats give NaN
//   for NaN and saturate +-Inf. Per format in src/numerics/reference/*.h.
// - Inputs may be float32, bfloat16 or float16 on any device; outputs of FakeQuantize have the
//   input's dtype and device (computed on the CPU in float32). CPU float32 takes the fused fast
//   path where one exists (integer grids, fp8/fp6/fp4, OCP MX with float elements).
// - Observers follow Quark's classes (observer_cls), with its bugs fixed where they are plain
//   bugs: see src/numerics/observers/observers.h.
// Thread-safety: free functions are thread-safe; an Observer / TensorQuantizer is not (one per
// tensor being observed).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "quarry/packing.h"  // PackOrder and the packed layouts
#include "quarry/quant_config.h"

namespace quarry {

struct QuantParams {
  at::Tensor scale;       // float32, shape per the contract above
  at::Tensor zero_point;  // int32 / float32, same shape as scale; undefined when not used
  bool operator==(const QuantParams&) const = delete;
};

// Accumulates statistics of the tensors it sees and computes QuantParams. Static observers keep
// a running range across Observe() calls (e.g. over all calibration batches).
class Observer {
 public:
  // The observer named by spec.observer_cls (or the natural one for the dtype/qscheme when None:
  // min-max for ints/fp8/fp per-group, the MX block observer for mx/fp4 MX, placeholder for casts).
  static absl::StatusOr<std::unique_ptr<Observer>> Create(const QuantizationSpec& spec);
  virtual ~Observer() = default;
  virtual absl::Status Observe(const at::Tensor& x) = 0;
  virtual absl::StatusOr<QuantParams> Compute() const = 0;
  virtual void Reset() = 0;
  virtual bool has_observed() const = 0;
};

// A fresh observer over `x` alone (dynamic quantization, weights).
absl::StatusOr<QuantParams> ComputeQuantParams(const QuantizationSpec& spec, const at::Tensor& x);

// Fake quantization with given parameters / with parameters computed from x itself.
absl::StatusOr<at::Tensor> FakeQuantize(const at::Tensor& x, const QuantizationSpec& spec,
                                        const QuantParams& params);
absl::StatusOr<at::Tensor> FakeQuantizeDynamic(const at::Tensor& x, const QuantizationSpec& spec);

// A really-quantized tensor: packed codes plus parameters. Layouts are documented with
// static_asserts in quarry/packing.h.
struct QuantizedTensor {
  Dtype dtype = Dtype::kInt8;              // element dtype (for MX: the element type)
  std::vector<int64_t> shape;              // logical (unpacked) shape
  at::Tensor data;                         // packed codes (int8/uint8/int32/... per packing.h)
  QuantParams params;
  int64_t pack_axis = -1;                  // axis along which sub-byte codes are packed
  PackOrder order = PackOrder::kReorder;
};

absl::StatusOr<QuantizedTensor> Quantize(const at::Tensor& x, const QuantizationSpec& spec,
                                         const QuantParams& params,
                                         PackOrder order = PackOrder::kReorder);
absl::StatusOr<at::Tensor> Dequantize(const QuantizedTensor& q, const QuantizationSpec& spec);

// A stateful quantizer for one tensor slot of a layer (weight, input, output, ...), covering
// two-stage specs (a list of QuantizationSpecs: ProgressiveSpec / ScaleQuantSpec).
// Lifecycle: Observe() during calibration (static specs), Freeze() once, then Apply() — which for
// dynamic specs computes parameters from each call's tensor.
class TensorQuantizer {
 public:
  static absl::StatusOr<std::unique_ptr<TensorQuantizer>> Create(std::vector<QuantizationSpec> stages);
  ~TensorQuantizer();
  absl::Status Observe(const at::Tensor& x);
  absl::Status Freeze();
  absl::StatusOr<at::Tensor> Apply(const at::Tensor& x) const;
  bool is_dynamic() const;
  bool frozen() const { return frozen_; }
  // Parameters of the first stage after Freeze() (static specs only), with its scales already
  // quantized by a following scale stage (ScaleQuantSpec).
  const std::optional<QuantParams>& params() const { return params_; }
  // Parameters of every stage after Freeze() (empty entries for dynamic stages); for a
  // ScaleQuantSpec, element 1 holds the scale stage's own parameters (e.g. NVFP4's global scale).
  const std::vector<QuantParams>& stage_params() const { return stage_params_; }
  // Freezes a single-stage static quantizer with parameters chosen elsewhere (GPTQ picks a
  // weight's scales itself; the KV-cache merge overrides k/v output scales). Replaces the
  // parameters if already frozen. REQUIRES: one stage, not dynamic, params shaped as Compute()
  // would shape them.
  absl::Status SetFrozenParams(QuantParams params);
  const std::vector<QuantizationSpec>& stages() const { return stages_; }

 private:
  TensorQuantizer() = default;
  std::vector<QuantizationSpec> stages_;
  std::vector<std::unique_ptr<Observer>> observers_;
  std::optional<QuantParams> params_;
  std::vector<QuantParams> stage_params_;
  bool frozen_ = false;
};

}  // namespace quarry
