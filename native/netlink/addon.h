// Per-environment state of the addon (napi instance data): the UeventSocket class of this
// environment and the fd handover (common/polled_fd_addon.h).
#pragma once

#include <napi.h>

#include "../common/polled_fd_addon.h"
#include "uevent_socket.h"

namespace triggerd {

class NetlinkAddon : public PolledFdAddon<NetlinkAddon, UeventSocket> {
 public:
  NetlinkAddon(Napi::Env env, Napi::Object exports);

 private:
  Napi::Value OpenUeventSocket(const Napi::CallbackInfo& info);
  Napi::Value PeerCredentials(const Napi::CallbackInfo& info);
  Napi::Value ReleaseMemory(const Napi::CallbackInfo& info);
};

}  // namespace triggerd
