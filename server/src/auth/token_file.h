// The bearer-token file of `quarry-server --auth-tokens FILE`: one token per line,
//   sha256:<64 hex digits of SHA-256(token)> tenant=<name> roles=<role>[,<role>...]
//       [expires=<RFC 3339 time>] [id=<name>]
// '#' starts a comment (whole line or the rest of a line); blank lines are ignored. The file
// holds only hashes, never a token. Roles: submit, read, cancel, admin, worker (roles.h).
// Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace quarry::server {

// Role bits. admin implies submit, read and cancel on every tenant's jobs (not worker).
enum Role : uint32_t {
  kRoleSubmit = 1u << 0,  // SubmitJob, UploadModel, UploadDataset
  kRoleRead = 1u << 1,    // GetJob, ListJobs, WatchJob, DownloadArtifact, ValidateConfig
  kRoleCancel = 1u << 2,  // CancelJob, DeleteJob, DeleteUpload
  kRoleAdmin = 1u << 3,   // every tenant's jobs; ListAuditEvents
  kRoleWorker = 1u << 4,  // WorkerService (Connect, UploadArtifact, ArtifactUploadStatus, FetchInput)
};

// "submit", "read", ...; "" for a combination.
const char* RoleName(uint32_t role);
// "read,submit" for a mask, in the order of the enum.
std::string RoleNames(uint32_t roles);

struct TokenEntry {
  std::array<uint8_t, 32> sha256{};     // SHA-256 of the token
  std::string id;                        // id= (default: the first 12 hex digits of the hash)
  std::string tenant;                    // tenant=
  uint32_t roles = 0;                    // roles=
  std::optional<int64_t> expires_unix_ms;  // expires= (absent = never)
  int line = 0;                          // where it came from (messages)
};

// Parses the file's text; an error names `path`, the line number and the bad field, and no
// error ever shows a hash. Duplicate hashes or ids are errors.
absl::StatusOr<std::vector<TokenEntry>> ParseTokenFile(absl::string_view text,
                                                       const std::string& path);

// A tenant or token id: 1-128 characters from [A-Za-z0-9._-] (also the quota file's names).
bool ValidTenantName(absl::string_view s);

// SHA-256 of a token.
std::array<uint8_t, 32> HashToken(absl::string_view token);
std::string HexOf(const std::array<uint8_t, 32>& digest);

// The entry whose hash matches SHA-256(token), comparing every entry in constant time
// (CRYPTO_memcmp, no early exit), or nullptr.
const TokenEntry* FindToken(const std::vector<TokenEntry>& entries, absl::string_view token);

}  // namespace quarry::server
