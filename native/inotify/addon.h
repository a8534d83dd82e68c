// Per-environment state of triggerd_inotify.node (napi instance data): the InotifyHandle class of
// this environment. Open handles close themselves at teardown (see InotifyHandle's cleanup hook).
#pragma once

#include <napi.h>

#include <string>

namespace triggerd {

class InotifyAddon : public Napi::Addon<InotifyAddon> {
 public:
  InotifyAddon(Napi::Env env, Napi::Object exports);

  InotifyAddon(const InotifyAddon&) = delete;
  InotifyAddon& operator=(const InotifyAddon&) = delete;

  // Hands the fd from openInotify() to the InotifyHandle constructor it calls; with nothing
  // pending the constructor refuses (JavaScript cannot make a handle by itself).
  void SetPendingFd(int fd) { pending_fd_ = fd; }
  int TakePendingFd() {
    int fd = pending_fd_;
    pending_fd_ = -1;
    return fd;
  }

 private:
  Napi::Value OpenInotify(const Napi::CallbackInfo& info);
  Napi::Value RereadPartitionTable(const Napi::CallbackInfo& info);

  Napi::FunctionReference handle_class_;
  int pending_fd_ = -1;
};

// The "path" argument of every entry point: a non-empty string without NUL bytes.
std::string PathArgument(Napi::Env env, const Napi::Value& value);

// A system error that also names the path, as Node's fs errors do.
Napi::Error SystemErrorWithPath(Napi::Env env, int err, const char* syscall,
                                const std::string& path);

}  // namespace triggerd
