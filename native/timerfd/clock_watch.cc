#include "clock_watch.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <exception>
#include <limits>

#include "../netlink/system_error.h"
#include "addon.h"
#include "../common/instance_tag.h"
#include "../common/js_calls.h"

namespace triggerd {

int ClockWatch::Arm(int fd) {
  struct itimerspec spec = {};
  spec.it_value.tv_sec = std::numeric_limits<time_t>::max();
  if (timerfd_settime(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &spec, nullptr) != 0)
    return errno;
  return 0;
}

// Marks the instances of ClockWatch (see common/instance_tag.h).
constexpr napi_type_tag kClockWatchTag = {0xc672e5bdb0bce661ULL, 0x0742c0b70933c012ULL};

ClockWatch* ClockWatch::Unwrap(Napi::Object object) {
  return UnwrapTagged<ClockWatch>(object, &kClockWatchTag, "ClockWatch");
}

Napi::Function ClockWatch::DefineClass(Napi::Env env) {
  return ObjectWrap<ClockWatch>::DefineClass(
      env, "ClockWatch",
      {
          InstanceMethod<&ClockWatch::Close>("close"),
          InstanceMethod<&ClockWatch::RefLoop>("ref"),
          InstanceMethod<&ClockWatch::UnrefLoop>("unref"),
          InstanceAccessor<&ClockWatch::GetClosed>("closed"),
          InstanceAccessor<&ClockWatch::GetArmedUntil>("armedSeconds"),
          InstanceAccessor<&ClockWatch::GetChanges>("changes"),
      });
}

Napi::Object ClockWatch::Create(Napi::Env env, TimerfdAddon* addon,
                                const Napi::FunctionReference& watch_class, int fd,
                                Napi::Function on_change, Napi::Function on_error) {
  Napi::Object object;
  addon->SetPendingFd(fd);
  try {
    object = watch_class.New({on_change, on_error});
  } catch (...) {
    // The constructor takes the fd only once nothing else can fail there.
    int left = addon->TakePendingFd();
    if (left >= 0) close(left);
    throw;
  }
  ClockWatch* watch = Unwrap(object);
  watch->Start(env);
  return object;
}

ClockWatch::ClockWatch(const Napi::CallbackInfo& info) : ObjectWrap<ClockWatch>(info) {
  Napi::Env env = info.Env();
  TagInstance(env, info.This().As<Napi::Object>(), &kClockWatchTag);
  TimerfdAddon* addon = env.GetInstanceData<TimerfdAddon>();
  bool pending = addon != nullptr && info.Length() >= 2 && info[0].IsFunction() &&
                 info[1].IsFunction();
  if (!pending) {
    throw MakeArgumentError(env, "ClockWatch is created by watchClockChanges()",
                            "ERR_ILLEGAL_CONSTRUCTOR");
  }
  on_change_ = Napi::Persistent(info[0].As<Napi::Function>());
  on_error_ = Napi::Persistent(info[1].As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "triggerd:ClockWatch",
                                                        info.This().As<Napi::Object>());
  fd_ = addon->TakePendingFd();
  if (fd_ < 0) {
    throw MakeArgumentError(env, "ClockWatch is created by watchClockChanges()",
                            "ERR_ILLEGAL_CONSTRUCTOR");
  }
}

ClockWatch::~ClockWatch() { CloseNative(); }

void ClockWatch::Start(Napi::Env env) {
  const char* failed = nullptr;
  int rc = poller_.Start(env, fd_, this, &failed);
  if (rc != 0) {
    CloseNative();
    ReleaseCallbacks();
    throw MakeSystemError(env, -rc, failed);
  }
  UpdateStrongReference();
}

void ClockWatch::CloseNative() {
  poller_.Close();
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

void ClockWatch::OnEnvironmentTeardown() { CloseNative(); }

void ClockWatch::OnReadable(int status) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Napi::Object self = Value();
  if (self.IsEmpty() || !CanCallIntoJs(env)) return;
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
    try {
      CallBack(on_change_, env.Undefined());
    } catch (const Napi::Error& e) {
      RaiseUncaught(env, e);
    } catch (const std::exception& e) {
      RaiseUncaught(env, e);
    }
  }
  if (error != 0 && fd_ >= 0) {
    try {
      CallBack(on_error_, MakeSystemError(env, error, failed).Value());
    } catch (const Napi::Error& e) {
      RaiseUncaught(env, e);
    } catch (const std::exception& e) {
      RaiseUncaught(env, e);
    }
  }
  in_callback_ = false;
  if (fd_ < 0) {
    async_context_.reset();  // close() ran inside a callback and left this for us
  } else {
    UpdateStrongReference();
  }
}

void ClockWatch::CallBack(Napi::FunctionReference& callback, napi_value argument) {
  if (callback.IsEmpty() || async_context_ == nullptr) return;
  // MakeCallback so nextTick and promise jobs queued by the callback run when it returns.
  callback.MakeCallback(Value(), {argument}, *async_context_);
}

void ClockWatch::UpdateStrongReference() {
  bool want = fd_ >= 0;
  if (want && !strong_reference_) {
    ObjectWrap<ClockWatch>::Ref();
    strong_reference_ = true;
  } else if (!want && strong_reference_) {
    ObjectWrap<ClockWatch>::Unref();
    strong_reference_ = false;
  }
}

void ClockWatch::ReleaseCallbacks() {
  on_change_.Reset();
  on_error_.Reset();
  if (!in_callback_) async_context_.reset();
  UpdateStrongReference();
}

void ClockWatch::Close(const Napi::CallbackInfo& /*info*/) {
  CloseNative();
  ReleaseCallbacks();
}

void ClockWatch::RefLoop(const Napi::CallbackInfo& /*info*/) { poller_.Ref(true); }

void ClockWatch::UnrefLoop(const Napi::CallbackInfo& /*info*/) { poller_.Ref(false); }

Napi::Value ClockWatch::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), fd_ < 0);
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
