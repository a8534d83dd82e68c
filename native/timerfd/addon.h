// Per-environment state of triggerd_timerfd.node (napi instance data): the ClockWatch class of
// this environment and the fd handover (common/polled_fd_addon.h).
#pragma once

#include <napi.h>

#include "../common/polled_fd_addon.h"
#include "clock_watch.h"

namespace triggerd {

class TimerfdAddon : public PolledFdAddon<TimerfdAddon, ClockWatch> {
 public:
  TimerfdAddon(Napi::Env env, Napi::Object exports);

 private:
  Napi::Value WatchClockChanges(const Napi::CallbackInfo& info);
  Napi::Value ClockNow(const Napi::CallbackInfo& info);
};

}  // namespace triggerd
