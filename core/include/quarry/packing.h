// Packed storage layouts of really-quantized tensors (quarry::QuantizedTensor::data and the MX
// scale bytes), as bit layouts with static_assert-checked sizes and constexpr pack/unpack helpers
// that host and (future) device code share. This header is the single place these layouts are
// defined; src/numerics/packing.cc applies them to whole tensors.
// Torch-free and stateless; thread-safe.
//
// General rules
// - Codes are packed along the LAST dimension of the tensor (QuantizedTensor::pack_axis is always
//   ndim - 1). A last dimension that does not fill the final word is padded with zero codes; the
//   logical shape (QuantizedTensor::shape) says how many codes are real.
// - Quark transposes per_group int weights ([out, in] -> [in, out]) before packing; that is an
//   export concern (core/src/export), not a storage one: QuantizedTensor keeps the logical layout.
// - Signed integer codes are stored as two's complement in their field; unsigned codes as is.
// - Byte order inside multi-byte words is little-endian.
//
// Layout per element dtype (data tensor dtype, packed last dimension for n logical codes):
//   int4 / uint4     int32, ceil(n/8) words   8 codes per word, nibble order per PackOrder
//   int3             uint8, ceil(n/8)*3 bytes 8 codes per 3 bytes (Quark Pack_3_bits)
//   int2             uint8, ceil(n/4) bytes   4 codes per byte, code i in bits 2i..2i+1
//   int8 / uint8     int8 / uint8, n          one code per byte
//   int16 / uint16   int16, n                 one code per element (uint16: same 16 bits)
//   int32            int32, n
//   fp8_e4m3/e5m2    uint8, n                 OCP bit codes (e4m3fn: no Inf, 0x7f/0xff NaN)
//   fp4 (e2m1)       uint8, ceil(n/2) bytes   2 codes per byte, element 2k in the low nibble
//   fp6_e2m3/e3m2    uint8, ceil(n/4)*3 bytes 4 codes per 3 bytes (Quark Pack_fp6)
//   mx (element e)   as element e above; mx int8 elements are int8 in [-127, 127]
//   mx6 / mx9        int8 / int16, n          sign-magnitude mantissa on the fine step
//                                             2^(E - quant_bit + 1) (see Mx6Mx9 below)
//   bfp16            int8, n                  signed 8-bit mantissa, value = code * scale
// Scales: float32 (QuantParams::scale) except MX, whose per-block scales are E8M0 bytes (uint8,
// value 2^(u - 127), 255 = NaN) in QuantizedTensor::params.scale.
#pragma once

#include <cstddef>
#include <cstdint>

namespace quarry {

// Packing order of sub-byte integer codes in int32 words (Quark's pack_method).
enum class PackOrder {
  kReorder,  // Quark's default "reorder": nibble i of each int32 holds element {0,2,4,6,1,3,5,7}[i]
  kOrder,    // "order": nibble i holds element i
};

namespace packing {

// ----- int4 / uint4: eight 4-bit codes in one little-endian int32 word -----
struct Int4x8 {
  uint32_t bits;  // nibble i = bits 4i..4i+3
};
static_assert(sizeof(Int4x8) == 4, "int4 word is 4 bytes");
inline constexpr int kInt4PerWord = 8;

// Which element of a group of eight sits in nibble `nibble`.
constexpr int Int4ElementOfNibble(PackOrder order, int nibble) {
  constexpr int kReorder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  return order == PackOrder::kReorder ? kReorder[nibble] : nibble;
}
// Which nibble holds element `element` (the inverse; Quark's unpack ORDER = {0,4,1,5,2,6,3,7}).
constexpr int Int4NibbleOfElement(PackOrder order, int element) {
  constexpr int kReorder[8] = {0, 4, 1, 5, 2, 6, 3, 7};
  return order == PackOrder::kReorder ? kReorder[element] : element;
}
static_assert(Int4ElementOfNibble(PackOrder::kReorder, 1) == 2, "reorder: nibble 1 holds element 2");
static_assert(Int4NibbleOfElement(PackOrder::kReorder, 1) == 4, "reorder: element 1 in nibble 4");
static_assert(Int4NibbleOfElement(PackOrder::kOrder, 5) == 5, "order: identity");

// Packs eight codes (int4: -8..7, uint4: 0..15) into a word; code k is element k of the group.
constexpr uint32_t PackInt4Word(const int32_t codes[8], PackOrder order) {
  uint32_t word = 0;
  for (int nibble = 0; nibble < 8; ++nibble) {
    const uint32_t code = static_cast<uint32_t>(codes[Int4ElementOfNibble(order, nibble)]) & 0xFu;
    word |= code << (4 * nibble);
  }
  return word;
}
// Element `element` of a word, sign-extended when `is_signed`.
constexpr int32_t UnpackInt4(uint32_t word, int element, PackOrder order, bool is_signed) {
  const int32_t code = static_cast<int32_t>((word >> (4 * Int4NibbleOfElement(order, element))) & 0xFu);
  return (is_signed && code >= 8) ? code - 16 : code;
}

// ----- int3: eight 3-bit codes in three bytes (little-endian 24-bit v0 | v1<<3 | ... | v7<<21) --
struct Int3x8 {
  uint8_t bytes[3];
};
static_assert(sizeof(Int3x8) == 3, "int3 group is 3 bytes");
inline constexpr int kInt3PerGroup = 8;

constexpr uint32_t PackInt3Group(const int32_t codes[8]) {
  uint32_t bits24 = 0;
  for (int i = 0; i < 8; ++i) bits24 |= (static_cast<uint32_t>(codes[i]) & 0x7u) << (3 * i);
  return bits24;  // bytes: [bits24 & 0xff, (bits24 >> 8) & 0xff, (bits24 >> 16) & 0xff]
}
constexpr int32_t UnpackInt3(uint32_t bits24, int element) {
  const int32_t code = static_cast<int32_t>((bits24 >> (3 * element)) & 0x7u);
  return code >= 4 ? code - 8 : code;
}

// ----- int2: four 2-bit codes per byte, element i in bits 2i..2i+1 (Quark does not pack int2) --
inline constexpr int kInt2PerByte = 4;
constexpr uint8_t PackInt2Byte(const int32_t codes[4]) {
  uint32_t b = 0;
  for (int i = 0; i < 4; ++i) b |= (static_cast<uint32_t>(codes[i]) & 0x3u) << (2 * i);
  return static_cast<uint8_t>(b);
}
constexpr int32_t UnpackInt2(uint8_t byte, int element) {
  const int32_t code = (byte >> (2 * element)) & 0x3;
  return code >= 2 ? code - 4 : code;
}

// ----- fp4 (OCP E2M1): code = sign<<3 | exponent<<1 | mantissa; two codes per byte -----------
// Code magnitudes 0..7 are 0, 0.5, 1, 1.5, 2, 3, 4, 6.
struct Fp4x2 {
  uint8_t bits;  // low nibble: element 2k, high nibble: element 2k+1
};
static_assert(sizeof(Fp4x2) == 1, "two fp4 codes per byte");
constexpr uint8_t PackFp4Byte(uint8_t even_code, uint8_t odd_code) {
  return static_cast<uint8_t>((even_code & 0xF) | ((odd_code & 0xF) << 4));
}
constexpr uint8_t UnpackFp4(uint8_t byte, int element_in_byte) {
  return static_cast<uint8_t>(element_in_byte == 0 ? byte & 0xF : byte >> 4);
}
static_assert(PackFp4Byte(0x1, 0xF) == 0xF1, "element 0 in the low nibble");

// ----- fp6 (OCP E2M3 / E3M2): code = sign<<5 | exponent<<mbits | mantissa; 4 codes per 3 bytes --
struct Fp6x4 {
  uint8_t bytes[3];  // little-endian 24-bit v0 | v1<<6 | v2<<12 | v3<<18
};
static_assert(sizeof(Fp6x4) == 3, "four fp6 codes in three bytes");
constexpr uint32_t PackFp6Group(const uint8_t codes[4]) {
  uint32_t bits24 = 0;
  for (int i = 0; i < 4; ++i) bits24 |= (static_cast<uint32_t>(codes[i]) & 0x3Fu) << (6 * i);
  return bits24;
}
constexpr uint8_t UnpackFp6(uint32_t bits24, int element) {
  return static_cast<uint8_t>((bits24 >> (6 * element)) & 0x3Fu);
}

// ----- E8M0 shared scale (OCP MX): value 2^(u - 127); u = 255 is NaN ---------------------------
// Quarry writes u = e + 127 for scale 2^e, e in [-127, 127] (so 2^-127 is byte 0). Quark's export
// helper clamps the scale to >= 2^-126 first and never writes byte 0; Quarry keeps 2^-127 exact so
// that Dequantize(Quantize(x)) == FakeQuantize(x) (MX "even" mode gives all-zero blocks 2^-127).
struct E8M0 {
  uint8_t biased_exponent;
};
static_assert(sizeof(E8M0) == 1, "E8M0 is one byte");
inline constexpr int kE8M0Bias = 127;
inline constexpr uint8_t kE8M0NaN = 0xFF;
constexpr bool E8M0Representable(int exponent) { return exponent >= -127 && exponent <= 127; }
constexpr uint8_t E8M0FromExponent(int exponent) {
  return static_cast<uint8_t>(exponent + kE8M0Bias);
}
constexpr int E8M0ToExponent(uint8_t byte) { return static_cast<int>(byte) - kE8M0Bias; }
static_assert(E8M0FromExponent(0) == 127 && E8M0ToExponent(254) == 127, "E8M0 bias");

// ----- MX6 / MX9 (shared micro-exponent pairs) -------------------------------------------------
// Quark's fake quantization gives each element the value q * 2^(E - d - quant_bit + 2), with E the
// block's shared exponent (scale 2^E), d in {0, 1} the micro-exponent of its pair and |q| within
// 2^(quant_bit - 1 + d). Quarry stores c = q * 2^(1 - d), the mantissa on the fine step
// 2^(E - quant_bit + 1): lossless (d = 0 gives even c) and one integer per element. Codes are
// sign-magnitude so that -0 survives (Quark's round(x / s) * s keeps it): MX6 (quant_bit 5) in
// int8 bits as sign << 7 | |c| (|c| <= 32), MX9 (quant_bit 8) in int16 bits as sign << 15 | |c|
// (|c| <= 256). The all-ones magnitude (0x7f / 0x7fff) is NaN (a NaN input stays NaN in Quark).
inline constexpr int kMx6QuantBit = 5;
inline constexpr int kMx9QuantBit = 8;
constexpr int32_t SignMagnitudeCode(bool negative, int32_t magnitude, int width_bits) {
  return negative ? static_cast<int32_t>((1u << (width_bits - 1)) | static_cast<uint32_t>(magnitude))
                  : magnitude;
}
// (negative, magnitude) of a sign-magnitude code stored in `width_bits` bits.
constexpr bool SignMagnitudeNegative(int32_t code, int width_bits) {
  return ((static_cast<uint32_t>(code) >> (width_bits - 1)) & 1u) != 0;
}
constexpr int32_t SignMagnitudeValue(int32_t code, int width_bits) {
  return static_cast<int32_t>(static_cast<uint32_t>(code) & ((1u << (width_bits - 1)) - 1));
}
constexpr int32_t SignMagnitudeNaN(int width_bits) {
  return static_cast<int32_t>((1u << (width_bits - 1)) - 1);
}
static_assert(SignMagnitudeValue(SignMagnitudeCode(true, 5, 8), 8) == 5, "MX6 magnitude");
static_assert(SignMagnitudeNaN(8) == 0x7F && SignMagnitudeNaN(16) == 0x7FFF, "MX6/MX9 NaN codes");
static_assert(SignMagnitudeNegative(SignMagnitudeCode(true, 0, 16), 16), "MX9 keeps -0");

}  // namespace packing
}  // namespace quarry
