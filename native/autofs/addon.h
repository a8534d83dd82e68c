// Per-environment state of triggerd_autofs.node (napi instance data): the AutofsMount class of
// this environment. Open mounts stop watching at teardown (see AutofsMount's FdPoller); the
// autofs mounts themselves stay: tearing them down is the daemon's decision (catatonic, umount).
#pragma once

#include <napi.h>

#include <string>

namespace triggerd {

// What mountAutofs() hands the AutofsMount constructor it calls (JavaScript cannot make one).
struct PendingAutofsMount {
  int pipe_fd = -1;
  int control_fd = -1;
  std::string where;
  dev_t devid = 0;
  bool strict_expire = false;
  uint32_t proto_version = 0;
  uint32_t proto_sub_version = 0;
};

class AutofsAddon : public Napi::Addon<AutofsAddon> {
 public:
  AutofsAddon(Napi::Env env, Napi::Object exports);

  AutofsAddon(const AutofsAddon&) = delete;
  AutofsAddon& operator=(const AutofsAddon&) = delete;

  void SetPending(const PendingAutofsMount& pending) {
    pending_ = pending;
    has_pending_ = true;
  }
  bool TakePending(PendingAutofsMount* out) {
    if (!has_pending_) return false;
    *out = pending_;
    has_pending_ = false;
    pending_ = PendingAutofsMount();
    return true;
  }

 private:
  Napi::Value MountAutofs(const Napi::CallbackInfo& info);
  Napi::Value UnmountLazy(const Napi::CallbackInfo& info);
  Napi::Value ProcessGroup(const Napi::CallbackInfo& info);

  Napi::FunctionReference mount_class_;
  PendingAutofsMount pending_;
  bool has_pending_ = false;
};

// The "path" argument of every entry point: an absolute path without NUL bytes.
std::string AbsolutePathArgument(Napi::Env env, const Napi::Value& value, const char* name);

// A system error that also names the path, as Node's fs errors do.
Napi::Error SystemErrorWithPath(Napi::Env env, int err, const char* syscall,
                                const std::string& path);

}  // namespace triggerd
