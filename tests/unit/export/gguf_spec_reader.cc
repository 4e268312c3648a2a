#include "unit/export/gguf_spec_reader.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace quarry::gguf_spec {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kMaxName = 64;        // spec: tensor names are at most 64 bytes
constexpr uint32_t kMaxDims = 4;

// A bounds-checked little-endian cursor over the file's bytes.
class Cursor {
 public:
  explicit Cursor(const std::string& b) : b_(b) {}
  uint64_t pos() const { return pos_; }

  absl::Status Need(uint64_t n, const std::string& what) const {
    if (n > b_.size() || pos_ > b_.size() - n)
      return absl::InvalidArgumentError(absl::StrCat("truncated at byte ", pos_, ": ", what,
                                                     " needs ", n, " bytes, ", b_.size() - pos_,
                                                     " left"));
    return absl::OkStatus();
  }
  template <typename T>
  absl::StatusOr<T> Get(const std::string& what) {
    absl::Status s = Need(sizeof(T), what);
    if (!s.ok()) return s;
    T v = 0;
    // Assemble from bytes so the result does not depend on the host's byte order.
    uint64_t acc = 0;
    for (size_t k = 0; k < sizeof(T); ++k)
      acc |= static_cast<uint64_t>(static_cast<uint8_t>(b_[pos_ + k])) << (8 * k);
    std::memcpy(&v, &acc, sizeof(T));  // little-endian host: the low bytes of acc
    pos_ += sizeof(T);
    return v;
  }
  absl::StatusOr<std::string> String(const std::string& what) {
    const uint64_t at = pos_;
    auto len = Get<uint64_t>(what + " length");
    if (!len.ok()) return len.status();
    absl::Status s = Need(*len, absl::StrCat(what, " (string of ", *len, " bytes at byte ", at, ")"));
    if (!s.ok()) return s;
    std::string out = b_.substr(pos_, *len);
    pos_ += *len;
    return out;
  }

 private:
  const std::string& b_;
  uint64_t pos_ = 0;
};

absl::Status ReadValue(Cursor& c, uint32_t type, const std::string& key, int depth, Value* v) {
  v->type = type;
  const uint64_t at = c.pos();
  auto err = [&](const std::string& m) {
    return absl::InvalidArgumentError(absl::StrCat("key '", key, "' value at byte ", at, ": ", m));
  };
#define SPEC_GET(T, field, conv)                 \
  {                                              \
    auto x = c.Get<T>("value of '" + key + "'"); \
    if (!x.ok()) return x.status();              \
    conv;                                        \
    return absl::OkStatus();                     \
  }
  switch (type) {
    case kUint8: SPEC_GET(uint8_t, u, (v->u = *x, v->i = *x))
    case kInt8: SPEC_GET(int8_t, i, (v->i = *x, v->u = *x >= 0 ? *x : 0))
    case kUint16: SPEC_GET(uint16_t, u, (v->u = *x, v->i = *x))
    case kInt16: SPEC_GET(int16_t, i, (v->i = *x, v->u = *x >= 0 ? *x : 0))
    case kUint32: SPEC_GET(uint32_t, u, (v->u = *x, v->i = *x))
    case kInt32: SPEC_GET(int32_t, i, (v->i = *x, v->u = *x >= 0 ? *x : 0))
    case kUint64:
      SPEC_GET(uint64_t, u, (v->u = *x, v->i = *x <= INT64_MAX ? static_cast<int64_t>(*x) : 0))
    case kInt64: SPEC_GET(int64_t, i, (v->i = *x, v->u = *x >= 0 ? *x : 0))
    case kFloat32: SPEC_GET(float, f, v->f = *x)
    case kFloat64: SPEC_GET(double, f, v->f = *x)
    case kBool: {
      auto x = c.Get<uint8_t>("value of '" + key + "'");
      if (!x.ok()) return x.status();
      if (*x > 1) return err(absl::StrCat("bool byte is ", int(*x), ", not 0 or 1"));
      v->b = *x == 1;
      return absl::OkStatus();
    }
    case kString: {
      auto s = c.String("value of '" + key + "'");
      if (!s.ok()) return s.status();
      v->s = std::move(*s);
      return absl::OkStatus();
    }
    case kArray: {
      if (depth > 8) return err("arrays nested deeper than 8");
      auto et = c.Get<uint32_t>("array element type of '" + key + "'");
      if (!et.ok()) return et.status();
      auto n = c.Get<uint64_t>("array length of '" + key + "'");
      if (!n.ok()) return n.status();
      if (*et > kFloat64) return err(absl::StrCat("array element type ", *et, " is not a GGUF type"));
      // Every element takes at least one byte: a length beyond the file is corrupt.
      absl::Status room = c.Need(*n, absl::StrCat("array '", key, "' of ", *n, " elements"));
      if (!room.ok()) return room;
      v->elem_type = *et;
      v->elems.resize(*n);
      for (uint64_t k = 0; k < *n; ++k) {
        absl::Status s = ReadValue(c, *et, absl::StrCat(key, "[", k, "]"), depth + 1, &v->elems[k]);
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    }
    default:
      return err(absl::StrCat("value type ", type, " is not a GGUF type"));
  }
#undef SPEC_GET
}

uint16_t Le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

}  // namespace

const char* ValueTypeName(uint32_t t) {
  static const char* const kNames[] = {"uint8", "int8",   "uint16", "int16", "uint32",
                                       "int32", "float32", "bool",  "string", "array",
                                       "uint64", "int64", "float64"};
  return t <= kFloat64 ? kNames[t] : "?";
}

bool Value::is_integer() const {
  return type == kUint8 || type == kInt8 || type == kUint16 || type == kInt16 ||
         type == kUint32 || type == kInt32 || type == kUint64 || type == kInt64;
}

const Value* File::Find(const std::string& key) const {
  auto it = kv.find(key);
  return it == kv.end() ? nullptr : &it->second;
}

const TensorInfo* File::FindTensor(const std::string& name) const {
  for (const TensorInfo& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

bool TypeLayout(uint32_t type, uint64_t* block_elements, uint64_t* block_bytes) {
  switch (type) {
    case 0: *block_elements = 1; *block_bytes = 4; return true;     // F32
    case 1: *block_elements = 1; *block_bytes = 2; return true;     // F16
    case 2: *block_elements = 32; *block_bytes = 18; return true;   // Q4_0
    case 3: *block_elements = 32; *block_bytes = 20; return true;   // Q4_1
    case 8: *block_elements = 32; *block_bytes = 34; return true;   // Q8_0
    case 30: *block_elements = 1; *block_bytes = 2; return true;    // BF16
    case 39: *block_elements = 32; *block_bytes = 17; return true;  // MXFP4
    default: return false;
  }
}

absl::StatusOr<File> Parse(std::string bytes) {
  File f;
  f.bytes = std::move(bytes);
  Cursor c(f.bytes);
  auto magic = c.Get<uint32_t>("magic");
  if (!magic.ok()) return magic.status();
  if (*magic != kMagic)
    return absl::InvalidArgumentError(
        absl::StrCat("byte 0: magic is 0x", absl::Hex(*magic, absl::kZeroPad8),
                     ", not \"GGUF\" (0x46554747 little-endian)"));
  auto version = c.Get<uint32_t>("version");
  if (!version.ok()) return version.status();
  if (*version != 3)
    return absl::InvalidArgumentError(absl::StrCat("byte 4: version ", *version, ", not 3"));
  f.version = *version;
  auto tc = c.Get<uint64_t>("tensor_count");
  if (!tc.ok()) return tc.status();
  auto kc = c.Get<uint64_t>("metadata_kv_count");
  if (!kc.ok()) return kc.status();
  f.tensor_count = *tc;
  f.kv_count = *kc;
  // Each kv takes >= 12 bytes, each tensor info >= 24: counts beyond the file are corrupt.
  if (*kc > f.bytes.size() / 12 || *tc > f.bytes.size() / 24)
    return absl::InvalidArgumentError(absl::StrCat("bytes 8..24: tensor_count ", *tc,
                                                   " / kv_count ", *kc, " cannot fit in ",
                                                   f.bytes.size(), " bytes"));

  for (uint64_t k = 0; k < *kc; ++k) {
    const uint64_t at = c.pos();
    auto key = c.String(absl::StrCat("key of kv ", k));
    if (!key.ok()) return key.status();
    if (key->empty() || key->size() > 65535)
      return absl::InvalidArgumentError(absl::StrCat("byte ", at, ": kv ", k, " key of ",
                                                     key->size(), " bytes"));
    if (f.kv.count(*key))
      return absl::InvalidArgumentError(absl::StrCat("byte ", at, ": duplicate key '", *key, "'"));
    auto type = c.Get<uint32_t>("value type of '" + *key + "'");
    if (!type.ok()) return type.status();
    Value v;
    absl::Status s = ReadValue(c, *type, *key, 0, &v);
    if (!s.ok()) return s;
    f.keys.push_back(*key);
    f.kv.emplace(*key, std::move(v));
  }

  if (const Value* a = f.Find("general.alignment")) {
    if (a->type != kUint32)
      return absl::InvalidArgumentError(absl::StrCat("general.alignment is ",
                                                     ValueTypeName(a->type), ", not uint32"));
    if (a->u == 0 || a->u % 8 != 0)
      return absl::InvalidArgumentError(
          absl::StrCat("general.alignment ", a->u, " is not a positive multiple of 8"));
    f.alignment = a->u;
  }

  std::set<std::string> names;
  for (uint64_t k = 0; k < *tc; ++k) {
    TensorInfo t;
    t.record_at = c.pos();
    auto name = c.String(absl::StrCat("name of tensor ", k));
    if (!name.ok()) return name.status();
    t.name = *name;
    auto bad = [&](const std::string& m) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor '", t.name, "' (record at byte ", t.record_at, "): ", m));
    };
    if (t.name.empty() || t.name.size() > kMaxName)
      return bad(absl::StrCat("name of ", t.name.size(), " bytes (1..64 allowed)"));
    if (!names.insert(t.name).second) return bad("duplicate tensor name");
    auto nd = c.Get<uint32_t>("n_dimensions of " + t.name);
    if (!nd.ok()) return nd.status();
    if (*nd < 1 || *nd > kMaxDims) return bad(absl::StrCat("n_dimensions ", *nd));
    uint64_t n = 1;
    for (uint32_t d = 0; d < *nd; ++d) {
      auto ne = c.Get<uint64_t>("dimension of " + t.name);
      if (!ne.ok()) return ne.status();
      if (*ne == 0 || *ne > (uint64_t{1} << 40) || n > (uint64_t{1} << 50) / *ne)
        return bad(absl::StrCat("dimension ", d, " is ", *ne));
      t.ne.push_back(*ne);
      n *= *ne;
    }
    auto type = c.Get<uint32_t>("type of " + t.name);
    if (!type.ok()) return type.status();
    t.type = *type;
    uint64_t be = 0, bb = 0;
    if (!TypeLayout(t.type, &be, &bb)) return bad(absl::StrCat("ggml type ", t.type, " unknown here"));
    if (t.ne[0] % be != 0)
      return bad(absl::StrCat("ne[0] = ", t.ne[0], " is not a multiple of the block (", be, ")"));
    t.bytes = n / be * bb;
    auto off = c.Get<uint64_t>("offset of " + t.name);
    if (!off.ok()) return off.status();
    t.offset = *off;
    if (t.offset % f.alignment != 0)
      return bad(absl::StrCat("offset ", t.offset, " is not a multiple of ", f.alignment));
    f.tensors.push_back(std::move(t));
  }

  const uint64_t end_of_infos = c.pos();
  f.data_start = (end_of_infos + f.alignment - 1) / f.alignment * f.alignment;
  for (uint64_t p = end_of_infos; p < f.data_start && p < f.bytes.size(); ++p)
    if (f.bytes[p] != 0)
      return absl::InvalidArgumentError(absl::StrCat("byte ", p, ": padding before the data "
                                                     "section is not zero"));
  // llama.cpp (gguf.cpp) requires each tensor to start where the previous one's padded data ends.
  uint64_t expect = 0;
  for (const TensorInfo& t : f.tensors) {
    if (t.offset != expect)
      return absl::InvalidArgumentError(absl::StrCat("tensor '", t.name, "' has offset ", t.offset,
                                                     ", llama.cpp expects ", expect));
    if (f.data_start + t.offset + t.bytes > f.bytes.size())
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", t.name, "' data [", f.data_start + t.offset, ", ",
          f.data_start + t.offset + t.bytes, ") runs past the end of the file (", f.bytes.size(),
          " bytes)"));
    expect = t.offset + (t.bytes + f.alignment - 1) / f.alignment * f.alignment;
    f.data_end = f.data_start + t.offset + t.bytes;
  }
  if (f.tensors.empty()) f.data_end = f.data_start;
  return f;
}

absl::StatusOr<File> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str());
}

float HalfToFloat(uint16_t h) {
  const bool neg = (h >> 15) != 0;
  const int exp = (h >> 10) & 0x1f;
  const int man = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(man), -24);  // zero or subnormal: man * 2^-24
  } else if (exp == 31) {
    v = man == 0 ? INFINITY : NAN;
  } else {
    v = std::ldexp(static_cast<float>(man + 1024), exp - 25);  // (1 + man/1024) * 2^(exp-15)
  }
  return neg ? -v : v;
}

float Bf16ToFloat(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

absl::StatusOr<std::vector<float>> Decode(uint32_t type, const uint8_t* data, uint64_t bytes,
                                          uint64_t n) {
  uint64_t be = 0, bb = 0;
  if (!TypeLayout(type, &be, &bb))
    return absl::InvalidArgumentError(absl::StrCat("ggml type ", type, " unknown here"));
  if (n % be != 0 || bytes != n / be * bb)
    return absl::InvalidArgumentError(absl::StrCat("type ", type, ": ", n, " elements take ",
                                                   n / be * bb, " bytes, got ", bytes));
  static const int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  std::vector<float> out(n);
  for (uint64_t b = 0; b < n / be; ++b) {
    const uint8_t* p = data + b * bb;
    float* y = out.data() + b * be;
    switch (type) {
      case 0: std::memcpy(y, p, 4); break;
      case 1: y[0] = HalfToFloat(Le16(p)); break;
      case 30: y[0] = Bf16ToFloat(Le16(p)); break;
      case 8: {
        const float d = HalfToFloat(Le16(p));
        for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<int8_t>(p[2 + j])) * d;
        break;
      }
      case 2: {
        const float d = HalfToFloat(Le16(p));
        for (int j = 0; j < 16; ++j) {
          y[j] = static_cast<float>((p[2 + j] & 0x0f) - 8) * d;
          y[j + 16] = static_cast<float>((p[2 + j] >> 4) - 8) * d;
        }
        break;
      }
      case 3: {
        const float d = HalfToFloat(Le16(p));
        const float m = HalfToFloat(Le16(p + 2));
        for (int j = 0; j < 16; ++j) {
          // Two roundings (this file is compiled with -ffp-contract=off: no fused multiply-add).
          const float lo = static_cast<float>(p[4 + j] & 0x0f) * d;
          const float hi = static_cast<float>(p[4 + j] >> 4) * d;
          y[j] = lo + m;
          y[j + 16] = hi + m;
        }
        break;
      }
      case 39: {
        const uint8_t e = p[0];
        uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<uint32_t>(e) - 1) << 23;
        float d;
        std::memcpy(&d, &bits, 4);  // 2^(e - 128)
        for (int j = 0; j < 16; ++j) {
          y[j] = static_cast<float>(kMxfp4Values[p[1 + j] & 0x0f]) * d;
          y[j + 16] = static_cast<float>(kMxfp4Values[p[1 + j] >> 4]) * d;
        }
        break;
      }
    }
  }
  return out;
}

}  // namespace quarry::gguf_spec
