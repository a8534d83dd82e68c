// Per-environment state of triggerd_fanotify.node (napi instance data): the FanotifyHandle class
// of this environment. Open handles close themselves at teardown (FdPoller's cleanup hook).
#pragma once

#include <napi.h>

#include <string>

namespace triggerd {

class FanotifyAddon : public Napi::Addon<FanotifyAddon> {
 public:
  FanotifyAddon(Napi::Env env, Napi::Object exports);

  FanotifyAddon(const FanotifyAddon&) = delete;
  FanotifyAddon& operator=(const FanotifyAddon&) = delete;

  // Hands the fd from openFanotify() to the FanotifyHandle constructor it calls; with nothing
  // pending the constructor refuses (JavaScript cannot make a handle by itself).
  void SetPendingFd(int fd) { pending_fd_ = fd; }
  int TakePendingFd() {
    int fd = pending_fd_;
    pending_fd_ = -1;
    return fd;
  }

 private:
  Napi::Value OpenFanotify(const Napi::CallbackInfo& info);

  Napi::FunctionReference handle_class_;
  int pending_fd_ = -1;
};

// The "path" argument of every entry point: a non-empty string without NUL bytes.
std::string FanotifyPathArgument(Napi::Env env, const Napi::Value& value);

// MakeSystemError, with glibc's errno name where libuv has none (ESTALE).
Napi::Error FanotifyError(Napi::Env env, int err, const char* syscall);

// A system error that also names the path, as Node's fs errors do.
Napi::Error FanotifyErrorWithPath(Napi::Env env, int err, const char* syscall,
                                  const std::string& path);

}  // namespace triggerd
