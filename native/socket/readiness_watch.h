// The JavaScript ReadinessWatch: watches an fd it does not own (a listening socket, FIFO, ...)
// with uv_poll on the environment's own loop and calls `onReadable` once per wake-up, reading
// nothing. Level-triggered: while the caller leaves a connection or datagram pending, it is
// called again on the next loop iteration; pause() stops that (the service owns the fd now).
// close() stops watching and leaves the fd open; the addon's close(fd) closes the watch first.
#pragma once

#include <napi.h>
#include <uv.h>

#include <memory>

#include "../common/fd_poller.h"
#include "addon.h"

namespace triggerd {

class ReadinessWatch : public Napi::ObjectWrap<ReadinessWatch>, private FdPollerClient {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  // Creates a watch on `fd` and starts it. One watch per fd: a second is EEXIST.
  static Napi::Object Create(Napi::Env env, SocketAddon* addon,
                             const Napi::FunctionReference& watch_class, int fd,
                             Napi::Function on_readable);

  // Only objects this class made: accessors called on a foreign `this` reach Unwrap too
  // (see common/instance_tag.h).
  static ReadinessWatch* Unwrap(Napi::Object object);

  explicit ReadinessWatch(const Napi::CallbackInfo& info);
  ~ReadinessWatch() override;

  // Stops watching without calling into JavaScript (safe from the destructor and the
  // environment's teardown). Idempotent. Never closes the fd.
  void CloseNative();
  // CloseNative() and release the callback: close() from JavaScript or the addon's close(fd).
  void CloseAndRelease();

 private:
  // FdPollerClient
  void OnReadable(int status) override;
  void OnEnvironmentTeardown() override;

  void Start(Napi::Env env);
  void HandleWakeUp(int status);
  void UpdateStrongReference();

  void Pause(const Napi::CallbackInfo& info);
  void Resume(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  void RefLoop(const Napi::CallbackInfo& info);
  void UnrefLoop(const Napi::CallbackInfo& info);
  Napi::Value GetFd(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  Napi::Value GetPaused(const Napi::CallbackInfo& info);

  int fd_ = -1;
  std::shared_ptr<WatchRegistry> registry_;
  FdPoller poller_;
  bool paused_ = false;
  bool strong_reference_ = false;
  bool in_callback_ = false;
  Napi::FunctionReference on_readable_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
};

}  // namespace triggerd
