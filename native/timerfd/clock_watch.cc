#include "clock_watch.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <limits>

#include "../netlink/system_error.h"
#include "addon.h"

namespace triggerd {

int ClockWatch::Arm(int fd) {
  struct itimerspec spec = {};
  spec.it_value.tv_sec = std::numeric_limits<time_t>::max();
  if (timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &spec, nullptr) != 0)
    return errno;
  return 0;
}

Napi::Function ClockWatch::DefineClass(Napi::Env env) {
  return ObjectWrap<ClockWatch>::DefineClass(
      env, kClassName,
      {
          CloseMethod(),
          RefMethod(),
          UnrefMethod(),
          ClosedAccessor(),
          InstanceAccessor<&ClockWatch::GetArmedUntil>("armedSeconds"),
          InstanceAccessor<&ClockWatch::GetChanges>("changes"),
      });
}

ClockWatch::ClockWatch(const Napi::CallbackInfo& info) : Base(info) { TakePending(); }

void ClockWatch::OnWakeUp(Napi::Env env, int status) {
  // Drain: ECANCELED (the clock was set, or a resume), an expiry count (never, at the end of time),
  // or EAGAIN (nothing, a spurious wake-up).
  bool changed = false;
  int error = 0;
  const char* failed = "read";
  for (int i = 0; i < 8 && fd_ >= 0; i++) {
    uint64_t expirations = 0;
    ssize_t got = read(fd_, &expirations, sizeof(expirations));
    if (got == static_cast<ssize_t>(sizeof(expirations))) continue;
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno == ECANCELED) {
      changed = true;
      continue;
    }
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    error = got < 0 ? errno : EIO;
    break;
  }
  // A cancelled timer stays cancelled (and readable) until it is set again.
  if (fd_ >= 0 && (changed || error != 0)) {
    int rc = Arm(fd_);
    if (rc != 0 && error == 0) {
      error = rc;
      failed = "timerfd_settime";
    }
  }
  if (status < 0 && error == 0 && fd_ >= 0) {
    int rc = poller_.Resume();
    if (rc != 0) {
      error = -rc;
      failed = "uv_poll_start";
    }
  }
  in_callback_ = true;
  if (changed) {
    changes_ += 1;
    CallGuarded(env, [&] { CallEvent(env.Undefined()); });
  }
  if (error != 0 && fd_ >= 0) CallError(env, error, failed);
  in_callback_ = false;
  FinishWakeUp();
}

// timerfd_gettime(): seconds until the armed expiry (hundreds of years while watching).
Napi::Value ClockWatch::GetArmedUntil(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (fd_ < 0) throw MakeSystemError(env, EBADF, "timerfd_gettime");
  struct itimerspec spec = {};
  if (timerfd_gettime(fd_, &spec) != 0) throw MakeSystemError(env, errno, "timerfd_gettime");
  return Napi::Number::New(env, static_cast<double>(spec.it_value.tv_sec) +
                                    static_cast<double>(spec.it_value.tv_nsec) / 1e9);
}

Napi::Value ClockWatch::GetChanges(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), changes_);
}

}  // namespace triggerd
