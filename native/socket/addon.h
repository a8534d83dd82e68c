// Per-environment state of triggerd_socket.node (napi instance data): the ReadinessWatch class
// of this environment and the registry of live watches by fd, which close(fd) consults so that a
// watch never outlives its fd (libuv must stop polling an fd before its number can be reused).
#pragma once

#include <napi.h>

#include <memory>
#include <unordered_map>

namespace triggerd {

class ReadinessWatch;

// Shared by the addon and every watch, so neither outlives the other's use of it.
struct WatchRegistry {
  std::unordered_map<int, ReadinessWatch*> by_fd;
};

class SocketAddon : public Napi::Addon<SocketAddon> {
 public:
  SocketAddon(Napi::Env env, Napi::Object exports);
  ~SocketAddon();

  SocketAddon(const SocketAddon&) = delete;
  SocketAddon& operator=(const SocketAddon&) = delete;

  // Hands the fd from watch() to the ReadinessWatch constructor it calls; with nothing pending
  // the constructor refuses (JavaScript cannot make a watch by itself).
  void SetPendingFd(int fd) { pending_fd_ = fd; }
  int TakePendingFd() {
    int fd = pending_fd_;
    pending_fd_ = -1;
    return fd;
  }
  const std::shared_ptr<WatchRegistry>& registry() const { return registry_; }

 private:
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value OpenFifo(const Napi::CallbackInfo& info);
  Napi::Value OpenSpecial(const Napi::CallbackInfo& info);
  Napi::Value OpenMessageQueue(const Napi::CallbackInfo& info);
  Napi::Value UnlinkMessageQueue(const Napi::CallbackInfo& info);
  Napi::Value Accept(const Napi::CallbackInfo& info);
  Napi::Value LocalAddress(const Napi::CallbackInfo& info);
  Napi::Value Watch(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value GetSockOptInt(const Napi::CallbackInfo& info);
  Napi::Value AcceptSpawn(const Napi::CallbackInfo& info);

  Napi::FunctionReference watch_class_;
  std::shared_ptr<WatchRegistry> registry_ = std::make_shared<WatchRegistry>();
  int pending_fd_ = -1;
  napi_env env_ = nullptr;
};

}  // namespace triggerd
