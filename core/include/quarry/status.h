// Error handling at core's API seam: absl::Status / absl::StatusOr<T>, one pair of propagation
// macros, and the conversion of exceptions (LibTorch's c10::Error, std::bad_alloc, ...) into a
// Status. Thread-safe: everything here is stateless.
#pragma once

#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

#define QUARRY_STATUS_CONCAT_INNER_(a, b) a##b
#define QUARRY_STATUS_CONCAT_(a, b) QUARRY_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function when `expr` (an absl::Status) is not OK.
#define QUARRY_RETURN_IF_ERROR(expr)                    \
  do {                                                  \
    ::absl::Status quarry_status_ = (expr);             \
    if (!quarry_status_.ok()) return quarry_status_;    \
  } while (false)

// `QUARRY_ASSIGN_OR_RETURN(auto x, F())`: evaluates F() (an absl::StatusOr<T>), returns its
// status when not OK, otherwise moves the value into `lhs`.
#define QUARRY_ASSIGN_OR_RETURN(lhs, rexpr) \
  QUARRY_ASSIGN_OR_RETURN_IMPL_(QUARRY_STATUS_CONCAT_(quarry_statusor_, __LINE__), lhs, rexpr)
#define QUARRY_ASSIGN_OR_RETURN_IMPL_(var, lhs, rexpr) \
  auto var = (rexpr);                                  \
  if (!var.ok()) return std::move(var).status();       \
  lhs = std::move(var).value()

namespace quarry {

// Prefixes a status message with context ("loading layer 3: ...") keeping its code.
inline absl::Status Annotate(const absl::Status& s, absl::string_view context) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(context, ": ", s.message()));
}

// Converts the exception currently being handled into a Status. Call only inside a catch block.
// c10::Error (TORCH_CHECK failures) become InvalidArgument, std::bad_alloc ResourceExhausted.
absl::Status StatusFromCurrentException(absl::string_view context);

// Runs `fn` and turns any exception into a Status; `fn` returns absl::Status or StatusOr<T>.
template <typename Fn>
auto CatchExceptions(absl::string_view context, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (...) {
    return StatusFromCurrentException(context);
  }
}

}  // namespace quarry
