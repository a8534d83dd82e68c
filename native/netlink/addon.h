// Per-environment state of the addon (napi instance data): the UeventSocket class of this
// environment. Open sockets close themselves at teardown (see UeventSocket's cleanup hook).
#pragma once

#include <napi.h>

#include "uevent_fd.h"

namespace triggerd {

class NetlinkAddon : public Napi::Addon<NetlinkAddon> {
 public:
  NetlinkAddon(Napi::Env env, Napi::Object exports);

  NetlinkAddon(const NetlinkAddon&) = delete;
  NetlinkAddon& operator=(const NetlinkAddon&) = delete;

  // Hands an opened fd from openUeventSocket() to the UeventSocket constructor it calls; with
  // nothing pending the constructor refuses (JavaScript cannot make a socket by itself).
  void SetPendingFd(UeventFd* opened) { pending_fd_ = opened; }
  UeventFd* TakePendingFd() {
    UeventFd* opened = pending_fd_;
    pending_fd_ = nullptr;
    return opened;
  }

 private:
  Napi::Value OpenUeventSocket(const Napi::CallbackInfo& info);
  Napi::Value PeerCredentials(const Napi::CallbackInfo& info);
  Napi::Value ReleaseMemory(const Napi::CallbackInfo& info);

  Napi::FunctionReference uevent_socket_class_;
  UeventFd* pending_fd_ = nullptr;
};

}  // namespace triggerd
