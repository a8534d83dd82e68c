// The JavaScript ClockWatch: one timerfd on CLOCK_REALTIME armed at the end of time with
// TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET (systemd's manager_setup_time_change()). The kernel
// cancels such a timer whenever the wall clock is set discontinuously (settimeofday, clock_settime,
// adjtimex with ADJ_SETOFFSET) and when the system resumes from suspend; read() then fails with
// ECANCELED. Each wake-up drains the fd, re-arms it and calls `onChange` once. It interprets
// nothing else: TypeScript decides what a change means.
#pragma once

#include <napi.h>

#include "../common/polled_fd_handle.h"

namespace triggerd {

class TimerfdAddon;

class ClockWatch : public PolledFdHandle<ClockWatch, TimerfdAddon> {
 public:
  static constexpr napi_type_tag kTypeTag = {0xc672e5bdb0bce661ULL, 0x0742c0b70933c012ULL};
  static constexpr const char* kClassName = "ClockWatch";
  static constexpr const char* kCreatedBy = "ClockWatch is created by watchClockChanges()";

  static Napi::Function DefineClass(Napi::Env env);

  // Made by watchClockChanges() only, with an armed timerfd (PolledFdAddon::CreateHandle).
  explicit ClockWatch(const Napi::CallbackInfo& info);

  // timerfd_settime(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) at TIME_T_MAX; 0 or an errno.
  static int Arm(int fd);

 private:
  friend Base;

  void OnWakeUp(Napi::Env env, int status);

  Napi::Value GetArmedUntil(const Napi::CallbackInfo& info);
  Napi::Value GetChanges(const Napi::CallbackInfo& info);

  double changes_ = 0;
};

}  // namespace triggerd
