#include "auth/tenant_quotas.h"

#include "auth/token_file.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace quarry::server {
std::optional<uint64_t> ParseByteCount(absl::string_view s) {
  if (s.empty()) return std::nullopt;
  int shift = 0;
  switch (absl::ascii_toupper(static_cast<unsigned char>(s.back()))) {
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: break;
  }
  if (shift > 0) s.remove_suffix(1);
  if (s.empty() || !absl::ascii_isdigit(static_cast<unsigned char>(s.front())))
    return std::nullopt;
  uint64_t v = 0;
  if (!absl::SimpleAtoi(s, &v)) return std::nullopt;
  if (shift > 0 && v > (~uint64_t{0} >> shift)) return std::nullopt;
  return v << shift;
}

std::string DescribeBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " bytes");
  const char* units[] = {"KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = -1;
  while (v >= 1024 && u < 3) {
    v /= 1024;
    ++u;
  }
  return absl::StrFormat("%.1f %s (%d bytes)", v, units[u], bytes);
}

absl::StatusOr<QuotaFile> ParseQuotaFile(absl::string_view text, const std::string& path) {
  QuotaFile out;
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    absl::string_view line = raw;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) line = line.substr(0, hash);
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    auto err = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("--tenant-quotas '", path, "' line ", line_no, ": ", what));
    };
    QuotaFileLine q;
    q.line = line_no;
    std::optional<std::string> tenant;
    for (absl::string_view field : absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
      const size_t eq = field.find('=');
      if (eq == absl::string_view::npos)
        return err(absl::StrCat("'", field, "': expected key=value"));
      const absl::string_view key = field.substr(0, eq), value = field.substr(eq + 1);
      std::optional<uint64_t>* slot = nullptr;
      if (key == "tenant") {
        if (tenant) return err("tenant= given twice");
        if (value != "*" && value != "-" && !ValidTenantName(value))
          return err(absl::StrCat("tenant '", value,
                                  "': 1-128 characters from [A-Za-z0-9._-], '*' or '-'"));
        tenant = std::string(value);
        continue;
      }
      if (key == "max_jobs") slot = &q.max_jobs;
      else if (key == "max_upload_bytes") slot = &q.max_upload_bytes;
      else if (key == "max_artifact_bytes") slot = &q.max_artifact_bytes;
      else
        return err(absl::StrCat("unknown field '", key,
                                "' (expected tenant, max_jobs, max_upload_bytes, "
                                "max_artifact_bytes)"));
      if (slot->has_value()) return err(absl::StrCat(key, "= given twice"));
      std::optional<uint64_t> v;
      if (key == "max_jobs") {
        uint64_t n = 0;
        if (absl::SimpleAtoi(value, &n) && !value.empty() &&
            absl::ascii_isdigit(static_cast<unsigned char>(value.front())))
          v = n;
      } else {
        v = ParseByteCount(value);
      }
      if (!v)
        return err(absl::StrCat(key, "='", value, "': expected a non-negative integer",
                                key == "max_jobs" ? "" : " with an optional K, M, G or T suffix",
                                " (0 = no limit)"));
      *slot = v;
    }
    if (!tenant) return err("tenant= is required");
    if (*tenant == "*") {
      if (out.defaults) return err(absl::StrCat("tenant=* is already set on line ", out.defaults->line));
      out.defaults = q;
      continue;
    }
    const std::string name = *tenant == "-" ? "" : *tenant;
    if (auto it = out.tenants.find(name); it != out.tenants.end())
      return err(absl::StrCat("tenant '", *tenant, "' is already set on line ", it->second.line));
    out.tenants.emplace(name, q);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<TenantQuotas>> TenantQuotas::Create(QuotaOptions options) {
  std::unique_ptr<TenantQuotas> q(new TenantQuotas(std::move(options)));
  auto file = q->Read();
  if (!file.ok()) return file.status();
  absl::MutexLock lock(&q->mu_);
  q->file_ = std::move(*file);
  return q;
}

absl::StatusOr<QuotaFile> TenantQuotas::Read() const {
  if (options_.file.empty()) return QuotaFile{};
  std::ifstream in(options_.file, std::ios::binary);
  if (!in)
    return absl::InvalidArgumentError(
        absl::StrCat("--tenant-quotas '", options_.file, "': cannot read it"));
  std::ostringstream text;
  text << in.rdbuf();
  return ParseQuotaFile(text.str(), options_.file);
}

absl::Status TenantQuotas::Reload() {
  auto file = Read();
  if (!file.ok()) return file.status();
  absl::MutexLock lock(&mu_);
  file_ = std::move(*file);
  return absl::OkStatus();
}

TenantLimits TenantQuotas::For(const std::string& tenant) const {
  TenantLimits l;
  l.max_jobs = {options_.default_max_jobs, "--tenant-max-jobs"};
  l.max_upload_bytes = {options_.default_max_upload_bytes, "--tenant-max-upload-bytes"};
  l.max_artifact_bytes = {options_.default_max_artifact_bytes, "--tenant-max-artifact-bytes"};
  absl::MutexLock lock(&mu_);
  auto apply = [&](const QuotaFileLine& q) {
    const std::string where = absl::StrCat(options_.file, " line ", q.line);
    if (q.max_jobs) l.max_jobs = {*q.max_jobs, where};
    if (q.max_upload_bytes) l.max_upload_bytes = {*q.max_upload_bytes, where};
    if (q.max_artifact_bytes) l.max_artifact_bytes = {*q.max_artifact_bytes, where};
  };
  if (file_.defaults) apply(*file_.defaults);
  if (auto it = file_.tenants.find(tenant); it != file_.tenants.end()) apply(it->second);
  return l;
}

bool TenantQuotas::any() const {
  if (options_.default_max_jobs || options_.default_max_upload_bytes ||
      options_.default_max_artifact_bytes)
    return true;
  absl::MutexLock lock(&mu_);
  return file_.defaults.has_value() || !file_.tenants.empty();
}

}  // namespace quarry::server
