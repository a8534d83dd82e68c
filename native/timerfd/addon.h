// Per-environment state of triggerd_timerfd.node (napi instance data): the ClockWatch class of
// this environment. Open watches close themselves at teardown (FdPoller's cleanup hook).
#pragma once

#include <napi.h>

namespace triggerd {

class TimerfdAddon : public Napi::Addon<TimerfdAddon> {
 public:
  TimerfdAddon(Napi::Env env, Napi::Object exports);

  TimerfdAddon(const TimerfdAddon&) = delete;
  TimerfdAddon& operator=(const TimerfdAddon&) = delete;

  // Hands the fd from watchClockChanges() to the ClockWatch constructor it calls; with nothing
  // pending the constructor refuses (JavaScript cannot make a watch by itself).
  void SetPendingFd(int fd) { pending_fd_ = fd; }
  int TakePendingFd() {
    int fd = pending_fd_;
    pending_fd_ = -1;
    return fd;
  }

 private:
  Napi::Value WatchClockChanges(const Napi::CallbackInfo& info);
  Napi::Value ClockNow(const Napi::CallbackInfo& info);

  Napi::FunctionReference watch_class_;
  int pending_fd_ = -1;
};

}  // namespace triggerd
