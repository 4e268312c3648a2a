#include "numerics/formats.h"

namespace quarry::numerics {

const FloatFormat* FloatFormatOf(Dtype dtype) {
  static constexpr FloatFormat kE4M3{Dtype::kFp8E4M3, 4, 3, 7, -6, 448.0f, true};
  static constexpr FloatFormat kE5M2{Dtype::kFp8E5M2, 5, 2, 15, -14, 57344.0f, true};
  static constexpr FloatFormat kE3M2{Dtype::kFp6E3M2, 3, 2, 3, -2, 28.0f, false};
  static constexpr FloatFormat kE2M3{Dtype::kFp6E2M3, 2, 3, 1, 0, 7.5f, false};
  static constexpr FloatFormat kE2M1{Dtype::kFp4, 2, 1, 1, 0, 6.0f, false};
  switch (dtype) {
    case Dtype::kFp8E4M3: return &kE4M3;
    case Dtype::kFp8E5M2: return &kE5M2;
    case Dtype::kFp6E3M2: return &kE3M2;
    case Dtype::kFp6E2M3: return &kE2M3;
    case Dtype::kFp4: return &kE2M1;
    default: return nullptr;
  }
}

bool MxElementParams(Dtype element, int* mbits, int* emax) {
  switch (element) {
    case Dtype::kFp4: *mbits = 1; *emax = 2; return true;
    case Dtype::kFp6E2M3: *mbits = 3; *emax = 2; return true;
    case Dtype::kFp6E3M2: *mbits = 2; *emax = 4; return true;
    case Dtype::kFp8E4M3: *mbits = 3; *emax = 8; return true;
    case Dtype::kFp8E5M2: *mbits = 2; *emax = 15; return true;
    case Dtype::kInt8: *mbits = 8; *emax = 0; return true;
    default: return false;
  }
}

}  // namespace quarry::numerics
