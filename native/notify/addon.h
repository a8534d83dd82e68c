// Per-environment state of triggerd_notify.node (napi instance data): the NotifySocket class of
// this environment. Open sockets close themselves at teardown (see NotifySocket's cleanup hook).
#pragma once

#include <napi.h>

#include "notify_fd.h"

namespace triggerd {

class NotifyAddon : public Napi::Addon<NotifyAddon> {
 public:
  NotifyAddon(Napi::Env env, Napi::Object exports);

  NotifyAddon(const NotifyAddon&) = delete;
  NotifyAddon& operator=(const NotifyAddon&) = delete;

  // Hands an opened fd from openNotifySocket() to the NotifySocket constructor it calls; with
  // nothing pending the constructor refuses (JavaScript cannot make a socket by itself).
  void SetPendingFd(NotifyFd* opened) { pending_fd_ = opened; }
  NotifyFd* TakePendingFd() {
    NotifyFd* opened = pending_fd_;
    pending_fd_ = nullptr;
    return opened;
  }

 private:
  Napi::Value OpenNotifySocket(const Napi::CallbackInfo& info);
  Napi::Value SendDatagram(const Napi::CallbackInfo& info);
  Napi::Value CloseFd(const Napi::CallbackInfo& info);
  Napi::Value Pipe(const Napi::CallbackInfo& info);

  Napi::FunctionReference notify_socket_class_;
  NotifyFd* pending_fd_ = nullptr;
};

}  // namespace triggerd
