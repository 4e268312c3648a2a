// Packed layouts (quarry/packing.h) on hand-checked examples: int4 "reorder" and "order" nibbles,
// int3 and fp6 bytes, int2 and fp4 bytes, E8M0 scale bytes, MX6 sign-magnitude codes.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "oracle_util.h"
#include "quarry/packing.h"
#include "quarry/quantize.h"
#include "quarry/spec_helpers.h"

namespace quarry {
namespace {

// Codes 0..7 (scale 1, symmetric int4 per tensor) packed into one int32.
TEST(Packing, Int4ReorderAndOrder) {
  QuantizationSpec s;
  s.dtype = Dtype::kInt4;
  s.qscheme = QSchemeType::kPerTensor;
  s.symmetric = true;
  QuantParams p;
  p.scale = at::ones({});
  p.zero_point = at::zeros({}, at::kInt);
  const at::Tensor x = at::tensor({0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, -1.f, -8.f}).reshape({1, 9});
  auto reorder = Quantize(x, s, p, PackOrder::kReorder);
  ASSERT_TRUE(reorder.ok()) << reorder.status();
  ASSERT_EQ(reorder->data.sizes(), at::IntArrayRef({1, 2}));
  // Nibble i holds element {0,2,4,6,1,3,5,7}[i]: 0,2,4,6,1,3,5,-1(0xF).
  EXPECT_EQ(static_cast<uint32_t>(reorder->data[0][0].item<int32_t>()), 0xF5316420u);
  EXPECT_EQ(reorder->data[0][1].item<int32_t>(), 0x8) << "element 8 (-8) alone, zero padding";
  auto order = Quantize(x, s, p, PackOrder::kOrder);
  ASSERT_TRUE(order.ok());
  EXPECT_EQ(static_cast<uint32_t>(order->data[0][0].item<int32_t>()), 0xF6543210u);
  for (const auto* q : {&*reorder, &*order}) {
    auto d = Dequantize(*q, s);
    ASSERT_TRUE(d.ok());
    EXPECT_TRUE(testing::BitEqual(*d, x));
  }
}

TEST(Packing, Int3Int2AndUint4) {
  QuantParams p;
  p.scale = at::ones({});
  p.zero_point = at::zeros({}, at::kInt);
  QuantizationSpec s;
  s.qscheme = QSchemeType::kPerTensor;
  s.symmetric = true;
  s.dtype = Dtype::kInt3;
  const at::Tensor x3 = at::tensor({0.f, 1.f, 2.f, 3.f, -4.f, -3.f, -2.f, -1.f});
  auto q3 = Quantize(x3, s, p);
  ASSERT_TRUE(q3.ok());
  // 24 bits: 0 | 1<<3 | 2<<6 | 3<<9 | 4<<12 | 5<<15 | 6<<18 | 7<<21 = 0xFAC688.
  EXPECT_EQ(q3->data[0].item<uint8_t>(), 0x88);
  EXPECT_EQ(q3->data[1].item<uint8_t>(), 0xC6);
  EXPECT_EQ(q3->data[2].item<uint8_t>(), 0xFA);
  s.dtype = Dtype::kInt2;
  auto q2 = Quantize(at::tensor({0.f, 1.f, -2.f, -1.f, 1.f}), s, p);
  ASSERT_TRUE(q2.ok());
  EXPECT_EQ(q2->data[0].item<uint8_t>(), 0xE4);  // 0 | 1<<2 | 2<<4 | 3<<6
  EXPECT_EQ(q2->data[1].item<uint8_t>(), 0x01);
  s.dtype = Dtype::kUint4;
  auto q4 = Quantize(at::tensor({15.f, 1.f}), s, p, PackOrder::kOrder);
  ASSERT_TRUE(q4.ok());
  EXPECT_EQ(q4->data[0].item<int32_t>(), 0x1F);
  auto d4 = Dequantize(*q4, s);
  ASSERT_TRUE(d4.ok());
  EXPECT_EQ(d4->index({0}).item<float>(), 15.0f) << "uint4 codes are not sign-extended";
}

TEST(Packing, Fp4Fp6AndE8M0) {
  QuantizationSpec fp4;
  fp4.dtype = Dtype::kFp4;
  fp4.qscheme = QSchemeType::kPerTensor;
  QuantParams one;
  one.scale = at::ones({});
  // E2M1 codes: 0.5 -> 1, 6 -> 7, -1 -> 0b1010, 3 -> 5.
  auto q = Quantize(at::tensor({0.5f, 6.f, -1.f, 3.f}), fp4, one);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(q->data[0].item<uint8_t>(), 0x71) << "element 0 in the low nibble";
  EXPECT_EQ(q->data[1].item<uint8_t>(), 0x5A);
  QuantizationSpec fp6 = fp4;
  fp6.dtype = Dtype::kFp6E2M3;
  // E2M3 codes: 1.0 -> 0b001000 (8), 7.5 -> 0b011111 (31), -0.125 -> sign|1 (33), 0 -> 0.
  auto q6 = Quantize(at::tensor({1.0f, 7.5f, -0.125f, 0.0f}), fp6, one);
  ASSERT_TRUE(q6.ok()) << q6.status();
  const uint32_t bits = 8u | (31u << 6) | (33u << 12);
  EXPECT_EQ(q6->data[0].item<uint8_t>(), bits & 0xFF);
  EXPECT_EQ(q6->data[1].item<uint8_t>(), (bits >> 8) & 0xFF);
  EXPECT_EQ(q6->data[2].item<uint8_t>(), (bits >> 16) & 0xFF);

  QuantizationSpec mx = *OCP_MXFP4Spec{}.ToQuantizationSpec();
  at::Tensor x = at::zeros({1, 64});
  x[0][0] = 6.0f;     // amax 6: scale 2^(2 - 2) = 1 -> byte 127
  x[0][32] = 0.875f;  // amax 1.75 * 2^-1: "even" rounds it up to 2^0 -> 2^-2 -> byte 125
  auto params = ComputeQuantParams(mx, x);
  ASSERT_TRUE(params.ok());
  auto qm = Quantize(x, mx, *params);
  ASSERT_TRUE(qm.ok()) << qm.status();
  EXPECT_EQ(qm->params.scale.scalar_type(), at::kByte);
  EXPECT_EQ(qm->params.scale[0][0].item<uint8_t>(), 127);
  EXPECT_EQ(qm->params.scale[0][1].item<uint8_t>(), 125);
  EXPECT_EQ(qm->data.sizes(), at::IntArrayRef({1, 32}));
}

TEST(Packing, Mx6KeepsNegativeZero) {
  QuantizationSpec mx6 = *MX6Spec{}.ToQuantizationSpec();
  at::Tensor x = at::zeros({1, 32});
  x[0][0] = 4.0f;
  x[0][1] = -1e-3f;  // rounds to -0 at the block's step
  auto params = ComputeQuantParams(mx6, x);
  ASSERT_TRUE(params.ok());
  auto q = Quantize(x, mx6, *params);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->data.scalar_type(), at::kChar);
  EXPECT_EQ(static_cast<uint8_t>(q->data[0][1].item<int8_t>()), 0x80) << "sign-magnitude -0";
  auto d = Dequantize(*q, mx6);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(std::signbit(d->index({0, 1}).item<float>()));
}

}  // namespace
}  // namespace quarry
