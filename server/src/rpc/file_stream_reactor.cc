#include "rpc/file_stream_reactor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "quarry/client/grpc_status.h"

namespace quarry::server {

FileStreamReactor::FileStreamReactor(const ServiceDeps& deps, FileStreamNames names,
                                     const std::function<absl::StatusOr<FileStreamPlan>()>& plan)
    : deps_(deps), names_(std::move(names)), timer_(deps.metrics, names_.rpc) {
  absl::StatusOr<FileStreamPlan> p = plan();
  if (!p.ok()) {
    Done(p.status());
    return;
  }
  plan_ = std::move(*p);
  offset_ = plan_.first_offset;
  Next();
}

void FileStreamReactor::OnWriteDone(bool ok) {
  if (!ok) {
    Done(absl::CancelledError(absl::StrCat("the ", names_.peer, " went away")));
    return;
  }
  Next();
}

void FileStreamReactor::Next() {
  while (index_ < plan_.files.size()) {
    const FileStreamPlan::File& f = plan_.files[index_];
    if (offset_ < f.info.size() || !sent_any_) {
      if (file_ == nullptr) {
        auto r = deps_.artifacts->fs()->OpenForRead(f.path);
        if (!r.ok()) {
          Done(absl::DataLossError(absl::StrCat(names_.what, " '", f.info.name(),
                                                "' is missing on the server: ",
                                                r.status().message())));
          return;
        }
        file_ = std::move(*r);
      }
      chunk_.Clear();
      chunk_.set_name(f.info.name());
      chunk_.set_offset(offset_);
      chunk_.set_total_size(f.info.size());
      chunk_.set_sha256(f.info.sha256());
      absl::Status st = file_->Read(offset_, deps_.chunk_bytes, chunk_.mutable_data());
      if (!st.ok()) {
        Done(st);
        return;
      }
      if (chunk_.data().empty() && offset_ < f.info.size()) {
        Done(absl::DataLossError(absl::StrCat(names_.what, " '", f.info.name(),
                                              "' is shorter on disk than recorded")));
        return;
      }
      offset_ += chunk_.data().size();
      sent_any_ = true;
      deps_.metrics->downloaded_bytes.WithLabels({names_.bytes_label})
          .Increment(chunk_.data().size());
      StartWrite(&chunk_);
      return;
    }
    ++index_;
    file_.reset();
    offset_ = 0;
    sent_any_ = false;
  }
  Done(absl::OkStatus());
}

void FileStreamReactor::Done(const absl::Status& st) {
  timer_.Finish(st.code());
  Finish(ToGrpcStatus(st));
}

}  // namespace quarry::server
