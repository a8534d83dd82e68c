// Per-environment state of triggerd_autofs.node (napi instance data): the AutofsMount class of
// this environment and the fd handover (common/polled_fd_addon.h). Open mounts stop watching at
// teardown (see AutofsMount's FdPoller); the autofs mounts themselves stay: tearing them down is
// the daemon's decision (catatonic, umount).
#pragma once

#include <napi.h>

#include <string>

#include "../common/polled_fd_addon.h"
#include "autofs_mount.h"

namespace triggerd {

class AutofsAddon : public PolledFdAddon<AutofsAddon, AutofsMount> {
 public:
  AutofsAddon(Napi::Env env, Napi::Object exports);

 private:
  Napi::Value MountAutofs(const Napi::CallbackInfo& info);
  Napi::Value UnmountLazy(const Napi::CallbackInfo& info);
  Napi::Value ProcessGroup(const Napi::CallbackInfo& info);
};

// The "path" argument of every entry point: an absolute path without NUL bytes.
std::string AbsolutePathArgument(Napi::Env env, const Napi::Value& value, const char* name);

}  // namespace triggerd
