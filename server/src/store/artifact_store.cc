#include "store/artifact_store.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace quarry::server {
namespace {

std::string Parent(const std::string& path) {
  return std::filesystem::path(path).parent_path().string();
}

class StagedWriterImpl final : public StagedWriter {
 public:
  StagedWriterImpl(FileSystem* fs, std::string part, std::string final_path,
                   std::string sha_path, std::unique_ptr<WritableFile> file, uint64_t size)
      : fs_(fs),
        part_(std::move(part)),
        final_(std::move(final_path)),
        sha_path_(std::move(sha_path)),
        file_(std::move(file)),
        size_(size) {}

  absl::Status Append(absl::string_view data) override {
    absl::Status st = file_->Append(data);
    if (!st.ok()) return st;
    size_ += data.size();
    return absl::OkStatus();
  }
  uint64_t size() const override { return size_; }

  absl::StatusOr<StagedFile> Finish(uint64_t total_size,
                                    const std::string& expected_sha256) override {
    if (size_ != total_size)
      return absl::InvalidArgumentError(absl::StrCat("'", part_, "': received ", size_,
                                                     " bytes, expected ", total_size));
    if (absl::Status st = file_->Sync(); !st.ok()) return st;
    if (absl::Status st = file_->Close(); !st.ok()) return st;
    auto sha = Sha256OfFile(fs_, part_);
    if (!sha.ok()) return sha.status();
    if (!expected_sha256.empty() && *sha != expected_sha256) {
      fs_->Remove(part_).IgnoreError();
      return absl::DataLossError(absl::StrCat("checksum mismatch: sha256 of the received bytes is ",
                                              *sha, ", the sender says ", expected_sha256));
    }
    if (absl::Status st = fs_->CreateDirs(Parent(sha_path_)); !st.ok()) return st;
    if (absl::Status st = fs_->CreateDirs(Parent(final_)); !st.ok()) return st;
    // The checksum first (temp + rename), then the data: a file under files/ always has one.
    {
      std::string tmp = sha_path_ + ".tmp";
      auto f = fs_->OpenForAppend(tmp, 0);
      if (!f.ok()) return f.status();
      if (absl::Status st = (*f)->Append(*sha); !st.ok()) return st;
      if (absl::Status st = (*f)->Sync(); !st.ok()) return st;
      if (absl::Status st = (*f)->Close(); !st.ok()) return st;
      if (absl::Status st = fs_->Rename(tmp, sha_path_); !st.ok()) return st;
    }
    if (absl::Status st = fs_->Rename(part_, final_); !st.ok()) return st;
    StagedFile out;
    out.received_bytes = size_;
    out.complete = true;
    out.sha256 = *sha;
    out.path = final_;
    return out;
  }

 private:
  FileSystem* fs_;
  std::string part_, final_, sha_path_;
  std::unique_ptr<WritableFile> file_;
  uint64_t size_;
};

}  // namespace

absl::Status ValidateRelativePath(const std::string& name, const std::string& what) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(what, " '", name, "': ", why));
  };
  if (name.empty()) return bad("must not be empty");
  if (name.size() > 512) return bad("longer than 512 bytes");
  if (name.front() == '/') return bad("must be a relative path");
  if (name.find('\0') != std::string::npos || name.find('\\') != std::string::npos)
    return bad("contains a NUL or backslash");
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..")
      return bad("must not contain empty, '.' or '..' components");
  }
  return absl::OkStatus();
}

std::string ArtifactStore::AttemptDir(const std::string& job_id, int attempt) const {
  return absl::StrCat(data_dir_, "/artifacts/", job_id, "/", attempt);
}

std::string ArtifactStore::UploadFilesDir(const std::string& upload_id) const {
  return absl::StrCat(data_dir_, "/uploads/", upload_id, "/files");
}

StagedFile ArtifactStore::Status(const std::string& base, const std::string& name) {
  StagedFile out;
  std::string final_path = absl::StrCat(base, "/files/", name);
  std::string sha_path = absl::StrCat(base, "/sha256/", name);
  auto size = fs_->FileSize(final_path);
  if (size.ok()) {
    auto f = fs_->OpenForRead(sha_path);
    std::string sha;
    if (f.ok() && (*f)->Read(0, 64, &sha).ok() && sha.size() == 64) {
      out.complete = true;
      out.received_bytes = *size;
      out.sha256 = sha;
      out.path = final_path;
      return out;
    }
  }
  auto part = fs_->FileSize(absl::StrCat(base, "/parts/", name));
  out.received_bytes = part.ok() ? *part : 0;
  return out;
}

absl::StatusOr<std::unique_ptr<StagedWriter>> ArtifactStore::Open(const std::string& base,
                                                                  const std::string& name,
                                                                  uint64_t offset) {
  std::string part = absl::StrCat(base, "/parts/", name);
  auto staged = fs_->FileSize(part);
  uint64_t have = staged.ok() ? *staged : 0;
  if (offset > have)
    return absl::FailedPreconditionError(absl::StrCat(
        "'", name, "': upload starts at byte ", offset, " but only ", have,
        " bytes are staged; resume from ", have));
  if (absl::Status st = fs_->CreateDirs(Parent(part)); !st.ok()) return st;
  auto file = fs_->OpenForAppend(part, offset);
  if (!file.ok()) return file.status();
  return std::unique_ptr<StagedWriter>(new StagedWriterImpl(
      fs_, part, absl::StrCat(base, "/files/", name), absl::StrCat(base, "/sha256/", name),
      std::move(*file), offset));
}

StagedFile ArtifactStore::ArtifactStatus(const std::string& job_id, int attempt,
                                         const std::string& name) {
  return Status(AttemptDir(job_id, attempt), name);
}

absl::StatusOr<std::unique_ptr<StagedWriter>> ArtifactStore::OpenArtifact(
    const std::string& job_id, int attempt, const std::string& name, uint64_t offset) {
  if (absl::Status st = ValidateRelativePath(job_id, "job id"); !st.ok()) return st;
  if (absl::Status st = ValidateRelativePath(name, "artifact name"); !st.ok()) return st;
  return Open(AttemptDir(job_id, attempt), name, offset);
}

absl::StatusOr<std::unique_ptr<StagedWriter>> ArtifactStore::OpenUploadFile(
    const std::string& upload_id, const std::string& relative_path, uint64_t offset) {
  if (absl::Status st = ValidateRelativePath(relative_path, "relative_path"); !st.ok()) return st;
  return Open(absl::StrCat(data_dir_, "/uploads/", upload_id), relative_path, offset);
}

StagedFile ArtifactStore::UploadFileStatus(const std::string& upload_id,
                                           const std::string& relative_path) {
  return Status(absl::StrCat(data_dir_, "/uploads/", upload_id), relative_path);
}

void ArtifactStore::RemoveOtherAttempts(const std::string& job_id, int keep_attempt) {
  std::string dir = absl::StrCat(data_dir_, "/artifacts/", job_id);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return;
  std::vector<std::string> attempts;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
    attempts.push_back(entry.path().filename().string());
  for (const std::string& a : attempts)
    if (a != std::to_string(keep_attempt)) fs_->RemoveAll(absl::StrCat(dir, "/", a)).IgnoreError();
  if (keep_attempt == 0) fs_->RemoveAll(dir).IgnoreError();
}

uint64_t ArtifactStore::AttemptBytes(const std::string& job_id, int attempt) {
  const std::string dir = absl::StrCat(AttemptDir(job_id, attempt), "/files");
  uint64_t total = 0;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() == 0 && it->is_directory(ec) && it->path().filename() == "checkpoints") {
      it.disable_recursion_pending();  // layer checkpoints are not artifacts
      continue;
    }
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total;
}

std::map<std::string, uint64_t> ArtifactStore::UploadBytesOnDisk(const std::string& upload_id) {
  std::map<std::string, uint64_t> out;
  if (!ValidateRelativePath(upload_id, "upload id").ok()) return out;
  for (const char* sub : {"/files", "/parts"}) {
    const std::string dir = absl::StrCat(data_dir_, "/uploads/", upload_id, sub);
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) continue;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec)) continue;
      uint64_t& bytes = out[std::filesystem::relative(it->path(), dir).generic_string()];
      bytes = std::max<uint64_t>(bytes, it->file_size(ec));
    }
  }
  return out;
}

absl::Status ArtifactStore::RemoveUpload(const std::string& upload_id) {
  if (absl::Status st = ValidateRelativePath(upload_id, "upload id"); !st.ok()) return st;
  const std::string dir = absl::StrCat(data_dir_, "/uploads/", upload_id);
  if (!fs_->Exists(dir)) return absl::OkStatus();
  return fs_->RemoveAll(dir);
}

namespace {
// "streams-00004.safetensors" -> 4; -1 for other names.
int StreamsLayer(const std::string& name) {
  constexpr absl::string_view kPrefix = "streams-", kSuffix = ".safetensors";
  if (!absl::StartsWith(name, kPrefix) || !absl::EndsWith(name, kSuffix)) return -1;
  int layer = -1;
  if (!absl::SimpleAtoi(absl::string_view(name).substr(
                            kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size()),
                        &layer))
    return -1;
  return layer;
}
}  // namespace

std::vector<ArtifactStore::CheckpointFileInfo> ArtifactStore::ListCheckpoints(
    const std::string& job_id, int before_attempt) {
  std::map<std::string, CheckpointFileInfo> newest;
  for (int a = 1; a < before_attempt; ++a) {
    const std::string dir = absl::StrCat(AttemptDir(job_id, a), "/files/checkpoints");
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) continue;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      StagedFile f = ArtifactStatus(job_id, a, absl::StrCat("checkpoints/", name));
      if (!f.complete) continue;
      newest[name] = {a, name, f.received_bytes, f.sha256};
    }
  }
  std::vector<CheckpointFileInfo> out;
  for (auto& [name, info] : newest) out.push_back(std::move(info));
  return out;
}

void ArtifactStore::PruneCheckpointStreams(const std::string& job_id, int layer) {
  const std::string job_dir = absl::StrCat(data_dir_, "/artifacts/", job_id);
  std::error_code ec;
  if (!std::filesystem::is_directory(job_dir, ec)) return;
  for (const auto& attempt : std::filesystem::directory_iterator(job_dir, ec)) {
    const std::string base = attempt.path().string();
    const std::string dir = base + "/files/checkpoints";
    if (!std::filesystem::is_directory(dir, ec)) continue;
    std::vector<std::string> doomed;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      const int l = StreamsLayer(name);
      if (l >= 0 && l < layer) doomed.push_back(name);
    }
    for (const std::string& name : doomed) {
      fs_->Remove(absl::StrCat(dir, "/", name)).IgnoreError();
      fs_->Remove(absl::StrCat(base, "/sha256/checkpoints/", name)).IgnoreError();
    }
  }
}

void ArtifactStore::RemoveCheckpoints(const std::string& job_id, int attempt) {
  const std::string base = AttemptDir(job_id, attempt);
  for (const char* sub : {"/files/checkpoints", "/sha256/checkpoints", "/parts/checkpoints"}) {
    const std::string dir = base + sub;
    if (fs_->Exists(dir)) fs_->RemoveAll(dir).IgnoreError();
  }
}

}  // namespace quarry::server
