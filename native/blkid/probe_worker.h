// One blkid probe of one device node, run on a libuv threadpool thread (Napi::AsyncWorker):
// opening a block device and reading its superblocks can block for a long time (a slow or dying
// disk), which must never stall the event loop. The worker only moves bytes: it hands back the
// raw (name, value bytes) pairs libblkid reports, and TypeScript maps them to udev properties.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "blkid_library.h"

namespace triggerd {

struct ProbeRequest {
  std::string path;
  int64_t offset = 0;
  bool noraid = false;
  bool has_hint = false;
  std::string hint;
};

struct ProbeValue {
  std::string name;
  std::vector<uint8_t> data;  // as libblkid returns it, including the trailing NUL of strings
};

enum class ProbeStatus { kFound, kNothing, kAmbivalent };

class ProbeWorker : public Napi::AsyncWorker {
 public:
  ProbeWorker(Napi::Env env, const BlkidLibrary* library, ProbeRequest request);

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  // Runs the probe; on failure sets err_/syscall_ and returns false.
  bool Probe(int fd);
  void Fail(int err, const char* syscall);

  Napi::Promise::Deferred deferred_;
  const BlkidLibrary* library_;
  ProbeRequest request_;
  // Outcome, written by Execute() on the worker thread, read by OnOK() on the main thread.
  int err_ = 0;
  const char* syscall_ = nullptr;
  ProbeStatus status_ = ProbeStatus::kNothing;
  std::vector<ProbeValue> values_;
};

}  // namespace triggerd
