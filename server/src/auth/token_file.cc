#include "auth/token_file.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace quarry::server {
namespace {

constexpr struct {
  uint32_t bit;
  const char* name;
} kRoles[] = {{kRoleSubmit, "submit"}, {kRoleRead, "read"}, {kRoleCancel, "cancel"},
              {kRoleAdmin, "admin"},   {kRoleWorker, "worker"}};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool ValidTenantName(absl::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s)
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  return true;
}

const char* RoleName(uint32_t role) {
  for (const auto& r : kRoles)
    if (r.bit == role) return r.name;
  return "";
}

std::string RoleNames(uint32_t roles) {
  std::vector<std::string> names;
  for (const auto& r : kRoles)
    if (roles & r.bit) names.push_back(r.name);
  return absl::StrJoin(names, ",");
}

std::array<uint8_t, 32> HashToken(absl::string_view token) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  EVP_Digest(token.data(), token.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

std::string HexOf(const std::array<uint8_t, 32>& d) {
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (uint8_t b : d) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 15]);
  }
  return out;
}

const TokenEntry* FindToken(const std::vector<TokenEntry>& entries, absl::string_view token) {
  const std::array<uint8_t, 32> h = HashToken(token);
  const TokenEntry* found = nullptr;
  for (const TokenEntry& e : entries) {
    const bool same = CRYPTO_memcmp(e.sha256.data(), h.data(), h.size()) == 0;
    if (same) found = &e;  // no early exit: every entry is compared
  }
  return found;
}

absl::StatusOr<std::vector<TokenEntry>> ParseTokenFile(absl::string_view text,
                                                       const std::string& path) {
  std::vector<TokenEntry> out;
  std::set<std::string> hashes, ids;
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    absl::string_view line = raw;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    auto err = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat("--auth-tokens '", path, "' line ", line_no,
                                                     ": ", what));
    };
    std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    TokenEntry e;
    e.line = line_no;
    absl::string_view hex = fields[0];
    if (!absl::ConsumePrefix(&hex, "sha256:"))
      return err("the line must start with sha256:<hex of the token's SHA-256> (the file holds "
                 "hashes, never tokens)");
    if (hex.size() != 64) return err("sha256: needs 64 hex digits");
    for (size_t i = 0; i < 32; ++i) {
      int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
      if (hi < 0 || lo < 0) return err("sha256: needs 64 hex digits");
      e.sha256[i] = static_cast<uint8_t>(hi * 16 + lo);
    }
    bool have_tenant = false, have_roles = false;
    for (size_t i = 1; i < fields.size(); ++i) {
      std::pair<absl::string_view, absl::string_view> kv =
          absl::StrSplit(fields[i], absl::MaxSplits('=', 1));
      const absl::string_view key = kv.first, value = kv.second;
      if (key == "tenant") {
        if (!ValidTenantName(value)) return err("tenant=: 1-128 characters from [A-Za-z0-9._-]");
        e.tenant = std::string(value);
        have_tenant = true;
      } else if (key == "roles") {
        for (absl::string_view r : absl::StrSplit(value, ',', absl::SkipEmpty())) {
          uint32_t bit = 0;
          for (const auto& known : kRoles)
            if (r == known.name) bit = known.bit;
          if (bit == 0)
            return err(absl::StrCat("roles=: unknown role '", r,
                                    "' (submit, read, cancel, admin, worker)"));
          e.roles |= bit;
        }
        if (e.roles == 0) return err("roles=: at least one role");
        have_roles = true;
      } else if (key == "expires") {
        absl::Time t;
        std::string why;
        if (!absl::ParseTime(absl::RFC3339_full, value, &t, &why))
          return err(absl::StrCat("expires=: not an RFC 3339 time (e.g. 2027-01-31T00:00:00Z): ",
                                  why));
        e.expires_unix_ms = absl::ToUnixMillis(t);
      } else if (key == "id") {
        if (!ValidTenantName(value)) return err("id=: 1-128 characters from [A-Za-z0-9._-]");
        e.id = std::string(value);
      } else {
        return err(absl::StrCat("unknown field '", key, "' (tenant=, roles=, expires=, id=)"));
      }
    }
    if (!have_tenant) return err("tenant= is required");
    if (!have_roles) return err("roles= is required");
    const std::string full_hex = HexOf(e.sha256);
    if (e.id.empty()) e.id = full_hex.substr(0, 12);
    if (!hashes.insert(full_hex).second) return err("the same token hash appears twice");
    if (!ids.insert(e.id).second) return err(absl::StrCat("id '", e.id, "' appears twice"));
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace quarry::server
