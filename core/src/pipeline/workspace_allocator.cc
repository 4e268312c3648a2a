#include "pipeline/workspace_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

namespace quarry::pipeline {
namespace {

constexpr size_t kAlignment = 64;  // as c10::alloc_cpu

class Impl final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    if (n < WorkspaceAllocator::kMinCachedBytes) {
      void* p = n == 0 ? nullptr : Raw(n);
      return {p, p, &FreeSmall, c10::Device(c10::DeviceType::CPU)};
    }
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(n);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
        cached_ -= n;
        ++reuses_;
      }
    }
    if (p == nullptr) p = Raw(n);
    // The context records the size so the deleter can file the block under it.
    auto* ctx = new Block{p, n};
    return {p, ctx, &FreeLarge, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }

  void SetLimit(uint64_t limit) {
    std::lock_guard<std::mutex> lock(mu_);
    limit_ = limit;
  }
  void Trim() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    cached_ = 0;
  }
  uint64_t cached() {
    std::lock_guard<std::mutex> lock(mu_);
    return cached_;
  }
  uint64_t reuses() {
    std::lock_guard<std::mutex> lock(mu_);
    return reuses_;
  }
  static Impl& Get() {
    static Impl* impl = new Impl();  // never destroyed: tensors may outlive static destruction
    return *impl;
  }

 private:
  struct Block {
    void* p;
    size_t n;
  };
  static void* Raw(size_t n) {
    void* p = nullptr;
    if (posix_memalign(&p, kAlignment, n) != 0 || p == nullptr) throw std::bad_alloc();
    return p;
  }
  static void FreeSmall(void* p) { std::free(p); }
  static void FreeLarge(void* ctx) {
    auto* b = static_cast<Block*>(ctx);
    Impl& self = Get();
    bool keep = false;
    {
      std::lock_guard<std::mutex> lock(self.mu_);
      if (self.cached_ + b->n <= self.limit_) {
        self.free_[b->n].push_back(b->p);
        self.cached_ += b->n;
        keep = true;
      }
    }
    if (!keep) std::free(b->p);
    delete b;
  }

  mutable std::mutex mu_;
  mutable std::map<size_t, std::vector<void*>> free_;
  mutable uint64_t cached_ = 0;
  mutable uint64_t reuses_ = 0;
  uint64_t limit_ = 0;
};

std::once_flag g_installed;
bool g_is_installed = false;

}  // namespace

void WorkspaceAllocator::Install(uint64_t limit_bytes) {
  Impl::Get().SetLimit(limit_bytes);
  std::call_once(g_installed, [] {
    c10::SetCPUAllocator(&Impl::Get(), /*priority=*/1);
    g_is_installed = true;
  });
}

void WorkspaceAllocator::Trim() {
  if (g_is_installed) Impl::Get().Trim();
}

uint64_t WorkspaceAllocator::cached_bytes() { return g_is_installed ? Impl::Get().cached() : 0; }
uint64_t WorkspaceAllocator::reuses() { return g_is_installed ? Impl::Get().reuses() : 0; }

}  // namespace quarry::pipeline
