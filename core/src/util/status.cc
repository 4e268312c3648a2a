#include "quarry/status.h"

#include <c10/util/Exception.h>

#include <stdexcept>

namespace quarry {

absl::Status StatusFromCurrentException(absl::string_view context) {
  auto with_context = [&](absl::StatusCode code, absl::string_view what) {
    if (context.empty()) return absl::Status(code, what);
    return absl::Status(code, absl::StrCat(context, ": ", what));
  };
  try {
    throw;
  } catch (const c10::Error& e) {
    // what_without_backtrace keeps the message a user can act on, without C++ frames.
    return with_context(absl::StatusCode::kInvalidArgument, e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return with_context(absl::StatusCode::kResourceExhausted, "out of memory");
  } catch (const std::invalid_argument& e) {
    return with_context(absl::StatusCode::kInvalidArgument, e.what());
  } catch (const std::out_of_range& e) {
    return with_context(absl::StatusCode::kOutOfRange, e.what());
  } catch (const std::exception& e) {
    return with_context(absl::StatusCode::kInternal, e.what());
  } catch (...) {
    return with_context(absl::StatusCode::kUnknown, "unknown exception");
  }
}

}  // namespace quarry
