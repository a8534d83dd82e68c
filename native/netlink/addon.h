// Per-environment state of the addon (napi instance data): the UeventSocket class of this
// environment. Open sockets close themselves at teardown (see UeventSocket's cleanup hook).
#pragma once

#include <napi.h>

namespace triggerd {

class NetlinkAddon : public Napi::Addon<NetlinkAddon> {
 public:
  NetlinkAddon(Napi::Env env, Napi::Object exports);

  NetlinkAddon(const NetlinkAddon&) = delete;
  NetlinkAddon& operator=(const NetlinkAddon&) = delete;

 private:
  Napi::Value OpenUeventSocket(const Napi::CallbackInfo& info);
  Napi::Value PeerCredentials(const Napi::CallbackInfo& info);

  Napi::FunctionReference uevent_socket_class_;
};

}  // namespace triggerd
