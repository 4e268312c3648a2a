// Helpers shared by the fuzz targets (tests/fuzz/*_fuzz.cc) and their seed writer: a per-process
// scratch directory for the parsers that take a path. Single-threaded, as libFuzzer runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

namespace quarry::fuzz {

// A directory that exists for the life of the process (under $TMPDIR, default /tmp), removed at
// exit. Every call returns the same one.
const std::string& ScratchDir();

// Writes `bytes` to ScratchDir()/name (replacing it) and returns the path; aborts on an I/O error
// (the harness is broken, not the parser).
std::string WriteScratchFile(const std::string& name, absl::string_view bytes);

inline absl::string_view AsView(const uint8_t* data, size_t size) {
  return absl::string_view(reinterpret_cast<const char*>(data), size);
}

}  // namespace quarry::fuzz
