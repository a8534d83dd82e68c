// Per-environment state of the addon (napi instance data): the UeventSocket class and the sockets
// still open, so that a worker's teardown closes their fds and uv handles.
#pragma once

#include <napi.h>

#include <unordered_set>

namespace triggerd {

class UeventSocket;

class NetlinkAddon : public Napi::Addon<NetlinkAddon> {
 public:
  NetlinkAddon(Napi::Env env, Napi::Object exports);
  ~NetlinkAddon();

  NetlinkAddon(const NetlinkAddon&) = delete;
  NetlinkAddon& operator=(const NetlinkAddon&) = delete;

  void RegisterSocket(UeventSocket* socket) { open_sockets_.insert(socket); }
  void UnregisterSocket(UeventSocket* socket) { open_sockets_.erase(socket); }

 private:
  Napi::Value OpenUeventSocket(const Napi::CallbackInfo& info);
  Napi::Value PeerCredentials(const Napi::CallbackInfo& info);

  Napi::FunctionReference uevent_socket_class_;
  std::unordered_set<UeventSocket*> open_sockets_;
};

}  // namespace triggerd
