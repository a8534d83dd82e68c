// Per-environment state of triggerd_fanotify.node (napi instance data): the FanotifyHandle class
// of this environment and the fd handover (common/polled_fd_addon.h).
#pragma once

#include <napi.h>

#include <string>

#include "../common/polled_fd_addon.h"
#include "fanotify_handle.h"

namespace triggerd {

class FanotifyAddon : public PolledFdAddon<FanotifyAddon, FanotifyHandle> {
 public:
  FanotifyAddon(Napi::Env env, Napi::Object exports);

 private:
  Napi::Value OpenFanotify(const Napi::CallbackInfo& info);
};

// MakeSystemError, with glibc's errno name where libuv has none (ESTALE).
Napi::Error FanotifyError(Napi::Env env, int err, const char* syscall);

// A system error that also names the path, as Node's fs errors do.
Napi::Error FanotifyErrorWithPath(Napi::Env env, int err, const char* syscall,
                                  const std::string& path);

}  // namespace triggerd
