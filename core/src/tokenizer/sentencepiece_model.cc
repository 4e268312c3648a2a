#include "tokenizer/sentencepiece_model.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "tokenizer/protobuf_wire.h"

namespace quarry::tokenizer_internal {
namespace {

absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status WrongType(const WireField& f, absl::string_view message, WireType expected) {
  return absl::InvalidArgumentError(absl::StrCat(
      message, ".", f.number, " at byte ", f.offset, " has wire type ", WireTypeName(f.type),
      ", expected ", WireTypeName(expected)));
}

absl::Status Expect(const WireField& f, absl::string_view message, WireType type) {
  if (f.type != type) return WrongType(f, message, type);
  return absl::OkStatus();
}

#define SP_EXPECT(field, message, type)                                  \
  do {                                                                   \
    if (absl::Status s_ = Expect(field, message, type); !s_.ok()) return s_; \
  } while (false)

absl::Status ParsePiece(const WireField& outer, SpPiece* piece) {
  WireReader r(outer.bytes, outer.payload_offset);
  while (!r.done()) {
    WireField f;
    if (absl::Status s = r.Next(&f); !s.ok()) return s;
    switch (f.number) {
      case 1:
        SP_EXPECT(f, "SentencePiece", WireType::kLengthDelimited);
        piece->piece = std::string(f.bytes);
        break;
      case 2:
        SP_EXPECT(f, "SentencePiece", WireType::kFixed32);
        piece->score = f.AsFloat();
        break;
      case 3: {
        SP_EXPECT(f, "SentencePiece", WireType::kVarint);
        const int32_t t = f.AsInt32();
        if (t < SpPiece::kNormal || t > SpPiece::kByte) {
          return absl::InvalidArgumentError(
              absl::StrCat("piece type ", t, " at byte ", f.offset, " is not a known type"));
        }
        piece->type = static_cast<SpPiece::Type>(t);
        break;
      }
      default:
        break;  // unknown / extension fields are skipped
    }
  }
  return absl::OkStatus();
}

absl::Status ParseTrainerSpec(const WireField& outer, SpTrainerSpec* spec) {
  WireReader r(outer.bytes, outer.payload_offset);
  while (!r.done()) {
    WireField f;
    if (absl::Status s = r.Next(&f); !s.ok()) return s;
    auto as_bool = [&](bool* out) -> absl::Status {
      SP_EXPECT(f, "TrainerSpec", WireType::kVarint);
      *out = f.AsBool();
      return absl::OkStatus();
    };
    auto as_int = [&](int32_t* out) -> absl::Status {
      SP_EXPECT(f, "TrainerSpec", WireType::kVarint);
      *out = f.AsInt32();
      return absl::OkStatus();
    };
    auto as_string = [&](std::string* out) -> absl::Status {
      SP_EXPECT(f, "TrainerSpec", WireType::kLengthDelimited);
      *out = std::string(f.bytes);
      return absl::OkStatus();
    };
    absl::Status s;
    switch (f.number) {
      case 3: {
        int32_t t = 0;
        s = as_int(&t);
        spec->model_type = static_cast<SpTrainerSpec::ModelType>(t);
        break;
      }
      case 4: s = as_int(&spec->vocab_size); break;
      case 21: s = as_bool(&spec->split_by_unicode_script); break;
      case 22: s = as_bool(&spec->split_by_whitespace); break;
      case 23: s = as_bool(&spec->split_by_number); break;
      case 24: s = as_bool(&spec->treat_whitespace_as_suffix); break;
      case 25: s = as_bool(&spec->split_digits); break;
      case 26: s = as_bool(&spec->allow_whitespace_only_pieces); break;
      case 35: s = as_bool(&spec->byte_fallback); break;
      case 40: s = as_int(&spec->unk_id); break;
      case 41: s = as_int(&spec->bos_id); break;
      case 42: s = as_int(&spec->eos_id); break;
      case 43: s = as_int(&spec->pad_id); break;
      case 44: s = as_string(&spec->unk_surface); break;
      case 45: s = as_string(&spec->unk_piece); break;
      case 46: s = as_string(&spec->bos_piece); break;
      case 47: s = as_string(&spec->eos_piece); break;
      case 48: s = as_string(&spec->pad_piece); break;
      default: break;
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ParseNormalizerSpec(const WireField& outer, SpNormalizerSpec* spec) {
  WireReader r(outer.bytes, outer.payload_offset);
  while (!r.done()) {
    WireField f;
    if (absl::Status s = r.Next(&f); !s.ok()) return s;
    switch (f.number) {
      case 1:
        SP_EXPECT(f, "NormalizerSpec", WireType::kLengthDelimited);
        spec->name = std::string(f.bytes);
        break;
      case 2:
        SP_EXPECT(f, "NormalizerSpec", WireType::kLengthDelimited);
        spec->precompiled_charsmap = std::string(f.bytes);
        break;
      case 3:
        SP_EXPECT(f, "NormalizerSpec", WireType::kVarint);
        spec->add_dummy_prefix = f.AsBool();
        break;
      case 4:
        SP_EXPECT(f, "NormalizerSpec", WireType::kVarint);
        spec->remove_extra_whitespaces = f.AsBool();
        break;
      case 5:
        SP_EXPECT(f, "NormalizerSpec", WireType::kVarint);
        spec->escape_whitespaces = f.AsBool();
        break;
      default:
        break;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SpModelProto> ParseSpModelProto(std::string_view bytes, std::string_view source) {
  auto fail = [&](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(Av(source), ": not a valid SentencePiece model (",
                                               s.message(), ")"));
  };
  if (bytes.empty()) return fail(absl::InvalidArgumentError("the file is empty"));
  SpModelProto model;
  WireReader r(bytes);
  while (!r.done()) {
    WireField f;
    if (absl::Status s = r.Next(&f); !s.ok()) return fail(s);
    absl::Status s;
    switch (f.number) {
      case 1:
        s = Expect(f, "ModelProto", WireType::kLengthDelimited);
        if (s.ok()) {
          model.pieces.emplace_back();
          s = ParsePiece(f, &model.pieces.back());
        }
        break;
      case 2:
        s = Expect(f, "ModelProto", WireType::kLengthDelimited);
        if (s.ok()) s = ParseTrainerSpec(f, &model.trainer_spec);
        break;
      case 3:
        s = Expect(f, "ModelProto", WireType::kLengthDelimited);
        if (s.ok()) s = ParseNormalizerSpec(f, &model.normalizer_spec);
        break;
      case 5:
        s = Expect(f, "ModelProto", WireType::kLengthDelimited);
        if (s.ok()) {
          model.has_denormalizer = true;
          s = ParseNormalizerSpec(f, &model.denormalizer_spec);
        }
        break;
      default:
        break;
    }
    if (!s.ok()) return fail(s);
  }
  if (model.pieces.empty()) return fail(absl::InvalidArgumentError("it has no pieces"));
  return model;
}

}  // namespace quarry::tokenizer_internal
