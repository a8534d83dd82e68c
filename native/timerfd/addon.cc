// Entry point of triggerd_timerfd.node: watchClockChanges() (a CLOCK_REALTIME timerfd with
// TFD_TIMER_CANCEL_ON_SET, watched on the environment's loop: it says when the wall clock was set
// or the system resumed) and clockNow() (CLOCK_REALTIME, CLOCK_MONOTONIC and CLOCK_BOOTTIME read
// together, which Node cannot do: Date has milliseconds and no boottime).
#include "addon.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "../common/arguments.h"
#include "../netlink/system_error.h"
#include "clock_watch.h"

namespace triggerd {

TimerfdAddon::TimerfdAddon(Napi::Env env, Napi::Object exports) : PolledFdAddon(env) {
  DefineAddon(exports, {
                           InstanceMethod<&TimerfdAddon::WatchClockChanges>("watchClockChanges",
                                                                            napi_enumerable),
                           InstanceMethod<&TimerfdAddon::ClockNow>("clockNow", napi_enumerable),
                       });
}

Napi::Value TimerfdAddon::WatchClockChanges(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Function on_change = FunctionArgument(env, info[0], "onChange");
  Napi::Function on_error = FunctionArgument(env, info[1], "onError");
  int fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) throw MakeSystemError(env, errno, "timerfd_create");
  int rc = ClockWatch::Arm(fd);
  if (rc != 0) {
    close(fd);
    throw MakeSystemError(env, rc, "timerfd_settime");
  }
  return CreateHandle(env, &fd, on_change, on_error);
}

namespace {

double Microseconds(clockid_t clock) {
  struct timespec ts = {};
  if (clock_gettime(clock, &ts) != 0) return -1;
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec / 1000);
}

}  // namespace

// { realtime, monotonic, boottime } in µs (exact in a double for the next 250 years).
Napi::Value TimerfdAddon::ClockNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("realtime", Napi::Number::New(env, Microseconds(CLOCK_REALTIME)));
  out.Set("monotonic", Napi::Number::New(env, Microseconds(CLOCK_MONOTONIC)));
  out.Set("boottime", Napi::Number::New(env, Microseconds(CLOCK_BOOTTIME)));
  return out;
}

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::TimerfdAddon;
NODE_API_ADDON(TimerfdAddon)
