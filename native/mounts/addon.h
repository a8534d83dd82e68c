// Per-environment state of triggerd_mounts.node (napi instance data): the MountInfoWatch class of
// this environment. Open watches close themselves at teardown (FdPoller's cleanup hook).
#pragma once

#include <napi.h>

namespace triggerd {

class MountsAddon : public Napi::Addon<MountsAddon> {
 public:
  MountsAddon(Napi::Env env, Napi::Object exports);

  MountsAddon(const MountsAddon&) = delete;
  MountsAddon& operator=(const MountsAddon&) = delete;

  // Hands the fd from watchMountInfo() to the MountInfoWatch constructor it calls; with nothing
  // pending the constructor refuses (JavaScript cannot make a watch by itself).
  void SetPendingFd(int fd) { pending_fd_ = fd; }
  int TakePendingFd() {
    int fd = pending_fd_;
    pending_fd_ = -1;
    return fd;
  }

 private:
  Napi::Value WatchMountInfo(const Napi::CallbackInfo& info);

  Napi::FunctionReference watch_class_;
  int pending_fd_ = -1;
};

}  // namespace triggerd
