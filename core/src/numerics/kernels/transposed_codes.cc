#include "numerics/kernels/transposed_codes.h"

#include <ATen/Parallel.h>

#include <cmath>

#include <vector>

#include "numerics/kernels/simd_elements.h"

namespace quarry::numerics::kernels {
namespace {

// The reference's code of one element (real_quantize.cc ComputeCodes, kInt, integer zero point):
// NaN is stored as the zero point.
inline int32_t CodeOf(float q, float z) {
  return q != q ? static_cast<int32_t>(z) : static_cast<int32_t>(q);  // q in [qmin, qmax]
}

// Codes of columns [c0, c0 + nc) of one row, group by group (one grid per inner loop, so it
// vectorises).
inline void CodesOfRow(const float* row, const IntGrid* grids, int64_t c0, int64_t nc,
                       int64_t group, float qmin, float qmax, int32_t* codes) {
  for (int64_t j = 0; j < nc;) {
    const int64_t gi = (c0 + j) / group;
    const int64_t end = std::min(nc, (gi + 1) * group - c0);
    const IntGrid g = grids[gi];
    for (int64_t k = j; k < end; ++k) codes[k] = CodeOf(QuantIntHalfEven(row[c0 + k], g, qmin, qmax), g.zp);
    j = end;
  }
}

}  // namespace

at::Tensor TransposedGroupCodes(const QuantPlan& plan, const at::Tensor& w, const at::Tensor& scale,
                                const at::Tensor& zero_point, int64_t group, PackOrder order) {
  if (plan.family != Family::kInt || plan.float_zero_point) return {};
  const bool int4 = plan.element == Dtype::kInt4 || plan.element == Dtype::kUint4;
  const bool int8 = plan.element == Dtype::kInt8 || plan.element == Dtype::kUint8;
  if (!(int4 || int8) || w.dim() != 2 || w.scalar_type() != at::kFloat || !w.is_contiguous())
    return {};
  const int64_t R = w.size(0), C = w.size(1);
  if (group <= 0 || (int4 && R % 8 != 0)) return {};
  const int64_t G = (C + group - 1) / group;
  if (scale.numel() != R * G || (zero_point.defined() && zero_point.numel() != R * G)) return {};
  const float* x = w.data_ptr<float>();
  const float* s = scale.data_ptr<float>();
  const float* z = zero_point.defined() ? zero_point.data_ptr<float>() : nullptr;
  const float qmin = static_cast<float>(plan.qmin), qmax = static_cast<float>(plan.qmax);
  if (plan.round != RoundType::kHalfEven) return {};
  // Per (row, group) grid constants, computed as the reference computes them per element.
  std::vector<IntGrid> grids(static_cast<size_t>(R * G));
  for (int64_t p = 0; p < R * G; ++p) {
    grids[static_cast<size_t>(p)] = MakeIntGrid(s[p], z ? z[p] : 0.0f, qmin, qmax);
    if (!MagicRoundingFits(grids[static_cast<size_t>(p)])) return {};
  }
  const IntGrid* gr = grids.data();
  // Tiles of kCols input columns x all rows, 8 rows at a time: the 8 x kCols block of W is read
  // row-contiguously, and the kCols output rows it writes stay in cache while R advances.
  constexpr int64_t kCols = 256;
  const int64_t tiles = (C + kCols - 1) / kCols;
  at::Tensor out;
  if (int4) {
    out = at::empty({C, R / 8}, at::kInt);
    int32_t* o = out.data_ptr<int32_t>();
    const int64_t words = R / 8;
    at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
      int32_t codes[8][kCols];
      int32_t packed[kCols];
      int elem[8];
      for (int k = 0; k < 8; ++k) elem[k] = packing::Int4ElementOfNibble(order, k);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t c0 = t * kCols, nc = std::min(kCols, C - c0);
        for (int64_t r0 = 0; r0 < R; r0 += 8) {
          for (int k = 0; k < 8; ++k) {
            const int64_t r = r0 + k;
            CodesOfRow(x + r * C, gr + r * G, c0, nc, group, qmin, qmax, codes[k]);
          }
          // packing::PackInt4Word for all nc words at once (vectorised): nibble k holds the code
          // of element Int4ElementOfNibble(order, k).
          const int32_t *e0 = codes[elem[0]], *e1 = codes[elem[1]], *e2 = codes[elem[2]],
                        *e3 = codes[elem[3]], *e4 = codes[elem[4]], *e5 = codes[elem[5]],
                        *e6 = codes[elem[6]], *e7 = codes[elem[7]];
          for (int64_t j = 0; j < nc; ++j)
            packed[j] = static_cast<int32_t>(
                (static_cast<uint32_t>(e0[j]) & 15u) | (static_cast<uint32_t>(e1[j]) & 15u) << 4 |
                (static_cast<uint32_t>(e2[j]) & 15u) << 8 | (static_cast<uint32_t>(e3[j]) & 15u) << 12 |
                (static_cast<uint32_t>(e4[j]) & 15u) << 16 | (static_cast<uint32_t>(e5[j]) & 15u) << 20 |
                (static_cast<uint32_t>(e6[j]) & 15u) << 24 | (static_cast<uint32_t>(e7[j]) & 15u) << 28);
          for (int64_t j = 0; j < nc; ++j) o[(c0 + j) * words + r0 / 8] = packed[j];
        }
      }
    });
    return out;
  }
  const bool is_signed = plan.element == Dtype::kInt8;
  out = at::empty({C, R}, is_signed ? at::kChar : at::kByte);
  uint8_t* o = static_cast<uint8_t*>(out.data_ptr());
  at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
    int32_t codes[kCols];
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t c0 = t * kCols, nc = std::min(kCols, C - c0);
      for (int64_t r = 0; r < R; ++r) {
        CodesOfRow(x + r * C, gr + r * G, c0, nc, group, qmin, qmax, codes);
        for (int64_t j = 0; j < nc; ++j) o[(c0 + j) * R + r] = static_cast<uint8_t>(codes[j]);
      }
    }
  });
  return out;
}

}  // namespace quarry::numerics::kernels
