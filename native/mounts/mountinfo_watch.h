// The JavaScript MountInfoWatch: owns one fd of /proc/self/mountinfo (O_RDONLY | O_CLOEXEC) and
// watches it for POLLPRI with uv_poll on the environment's own loop. The kernel reports a change
// of the mount table as POLLERR | POLLPRI on that fd (fs/proc_namespace.c mounts_poll), and it
// does so from ->poll itself: every poll call that sees a new event counter *consumes* it. epoll
// polls an fd once when it is added and again when it hands out events, so a change that is
// only discovered by the add-time poll is lost. Hence two rules: the watch is never paused and
// re-added (it stays registered from start to close), and the reader reads the table once after
// the loop has registered the fd (the first turn of the loop), so a change before that is in the
// table it reads. Each wake-up calls `onChange` once; reading and coalescing are JavaScript's.
// It reads and parses nothing.
#pragma once

#include <napi.h>
#include <uv.h>

#include <memory>
#include <string>

#include "../common/fd_poller.h"

namespace triggerd {

class MountsAddon;

class MountInfoWatch : public Napi::ObjectWrap<MountInfoWatch>, private FdPollerClient {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  // Wraps an open fd in a new MountInfoWatch and starts watching it. Takes the fd in every case:
  // on failure it is closed and the error thrown.
  static Napi::Object Create(Napi::Env env, MountsAddon* addon,
                             const Napi::FunctionReference& watch_class, int fd,
                             Napi::Function on_change, Napi::Function on_error);

  // Only objects this class made: accessors called on a foreign `this` reach Unwrap too
  // (see common/instance_tag.h).
  static MountInfoWatch* Unwrap(Napi::Object object);

  explicit MountInfoWatch(const Napi::CallbackInfo& info);
  ~MountInfoWatch() override;

  // Stops watching and closes the fd without calling into JavaScript. Idempotent.
  void CloseNative();

 private:
  // FdPollerClient
  void OnReadable(int status) override;
  void OnEnvironmentTeardown() override;

  void Start(Napi::Env env);
  bool CallBack(Napi::FunctionReference& callback, napi_value argument);
  void UpdateStrongReference();
  void ReleaseCallbacks();

  void Close(const Napi::CallbackInfo& info);
  void RefLoop(const Napi::CallbackInfo& info);
  void UnrefLoop(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  Napi::Value GetWakeups(const Napi::CallbackInfo& info);

  int fd_ = -1;
  FdPoller poller_;
  bool strong_reference_ = false;
  bool in_callback_ = false;
  double wakeups_ = 0;
  Napi::FunctionReference on_change_;
  Napi::FunctionReference on_error_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
};

}  // namespace triggerd
