// The JavaScript ClockWatch: one timerfd on CLOCK_REALTIME armed at the end of time with
// TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET (systemd's manager_setup_time_change()). The kernel
// cancels such a timer whenever the wall clock is set discontinuously (settimeofday, clock_settime,
// adjtimex with ADJ_SETOFFSET) and when the system resumes from suspend; read() then fails with
// ECANCELED. Each wake-up drains the fd, re-arms it and calls `onChange` once. It interprets
// nothing else: TypeScript decides what a change means.
#pragma once

#include <napi.h>

#include <memory>

#include "../common/fd_poller.h"

namespace triggerd {

class TimerfdAddon;

class ClockWatch : public Napi::ObjectWrap<ClockWatch>, private FdPollerClient {
 public:
  static Napi::Function DefineClass(Napi::Env env);
  // Wraps an armed timerfd in a new ClockWatch and starts watching it. Takes the fd in every
  // case: on failure it is closed and the error thrown.
  static Napi::Object Create(Napi::Env env, TimerfdAddon* addon,
                             const Napi::FunctionReference& watch_class, int fd,
                             Napi::Function on_change, Napi::Function on_error);

  // Only objects this class made: accessors called on a foreign `this` reach Unwrap too
  // (see common/instance_tag.h).
  static ClockWatch* Unwrap(Napi::Object object);

  explicit ClockWatch(const Napi::CallbackInfo& info);
  ~ClockWatch() override;

  // timerfd_settime(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) at TIME_T_MAX; 0 or an errno.
  static int Arm(int fd);

  // Stops watching and closes the fd without calling into JavaScript. Idempotent.
  void CloseNative();

 private:
  // FdPollerClient
  void OnReadable(int status) override;
  void OnEnvironmentTeardown() override;

  void Start(Napi::Env env);
  void CallBack(Napi::FunctionReference& callback, napi_value argument);
  void UpdateStrongReference();
  void ReleaseCallbacks();

  void Close(const Napi::CallbackInfo& info);
  void RefLoop(const Napi::CallbackInfo& info);
  void UnrefLoop(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  Napi::Value GetArmedUntil(const Napi::CallbackInfo& info);
  Napi::Value GetChanges(const Napi::CallbackInfo& info);

  int fd_ = -1;
  double changes_ = 0;
  FdPoller poller_;
  bool strong_reference_ = false;
  bool in_callback_ = false;
  Napi::FunctionReference on_change_;
  Napi::FunctionReference on_error_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
};

}  // namespace triggerd
