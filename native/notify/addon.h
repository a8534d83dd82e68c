// Per-environment state of triggerd_notify.node (napi instance data): the NotifySocket class of
// this environment and the fd handover (common/polled_fd_addon.h).
#pragma once

#include <napi.h>

#include "../common/polled_fd_addon.h"
#include "notify_socket.h"

namespace triggerd {

class NotifyAddon : public PolledFdAddon<NotifyAddon, NotifySocket> {
 public:
  NotifyAddon(Napi::Env env, Napi::Object exports);

 private:
  Napi::Value OpenNotifySocket(const Napi::CallbackInfo& info);
  Napi::Value SendDatagram(const Napi::CallbackInfo& info);
  Napi::Value CloseFd(const Napi::CallbackInfo& info);
  Napi::Value Pipe(const Napi::CallbackInfo& info);
};

}  // namespace triggerd
