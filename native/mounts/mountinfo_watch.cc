#include "mountinfo_watch.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <exception>

#include "../netlink/system_error.h"
#include "addon.h"
#include "../common/instance_tag.h"
#include "../common/js_calls.h"

namespace triggerd {

// Marks the instances of MountInfoWatch (see common/instance_tag.h).
constexpr napi_type_tag kMountInfoWatchTag = {0x23ca26ee1b801ee8ULL, 0xd6b3f81121f7aab5ULL};

MountInfoWatch* MountInfoWatch::Unwrap(Napi::Object object) {
  return UnwrapTagged<MountInfoWatch>(object, &kMountInfoWatchTag, "MountInfoWatch");
}

Napi::Function MountInfoWatch::DefineClass(Napi::Env env) {
  return ObjectWrap<MountInfoWatch>::DefineClass(
      env, "MountInfoWatch",
      {
          InstanceMethod<&MountInfoWatch::Close>("close"),
          InstanceMethod<&MountInfoWatch::RefLoop>("ref"),
          InstanceMethod<&MountInfoWatch::UnrefLoop>("unref"),
          InstanceAccessor<&MountInfoWatch::GetClosed>("closed"),
          InstanceAccessor<&MountInfoWatch::GetWakeups>("wakeups"),
      });
}

Napi::Object MountInfoWatch::Create(Napi::Env env, MountsAddon* addon,
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
  MountInfoWatch* watch = Unwrap(object);
  watch->Start(env);
  return object;
}

MountInfoWatch::MountInfoWatch(const Napi::CallbackInfo& info)
    : ObjectWrap<MountInfoWatch>(info) {
  Napi::Env env = info.Env();
  TagInstance(env, info.This().As<Napi::Object>(), &kMountInfoWatchTag);
  MountsAddon* addon = env.GetInstanceData<MountsAddon>();
  bool pending =
      addon != nullptr && info.Length() >= 2 && info[0].IsFunction() && info[1].IsFunction();
  if (!pending) {
    throw MakeArgumentError(env, "MountInfoWatch is created by watchMountInfo()",
                            "ERR_ILLEGAL_CONSTRUCTOR");
  }
  on_change_ = Napi::Persistent(info[0].As<Napi::Function>());
  on_error_ = Napi::Persistent(info[1].As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "triggerd:MountInfoWatch",
                                                        info.This().As<Napi::Object>());
  fd_ = addon->TakePendingFd();
  if (fd_ < 0) {
    throw MakeArgumentError(env, "MountInfoWatch is created by watchMountInfo()",
                            "ERR_ILLEGAL_CONSTRUCTOR");
  }
}

MountInfoWatch::~MountInfoWatch() { CloseNative(); }

void MountInfoWatch::Start(Napi::Env env) {
  const char* failed = nullptr;
  // POLLPRI only: the file is always POLLIN (it is a seq_file), so UV_READABLE would spin.
  int rc = poller_.Start(env, fd_, this, &failed, UV_PRIORITIZED);
  if (rc != 0) {
    CloseNative();
    ReleaseCallbacks();
    throw MakeSystemError(env, -rc, failed);
  }
  UpdateStrongReference();
}

void MountInfoWatch::CloseNative() {
  poller_.Close();
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

void MountInfoWatch::OnEnvironmentTeardown() { CloseNative(); }

void MountInfoWatch::OnReadable(int status) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  Napi::Object self = Value();
  wakeups_ += 1;
  if (self.IsEmpty() || !CanCallIntoJs(env)) return;
  // libuv reports POLLERR|POLLPRI as status 0 with UV_PRIORITIZED and keeps watching. A status
  // < 0 (POLLERR alone) stopped the handle: the fd is unusable, which onError reports.
  bool fd_gone = status < 0 || fd_ < 0 || fcntl(fd_, F_GETFD) < 0;
  in_callback_ = true;
  try {
    if (fd_gone) {
      CallBack(on_error_, MakeSystemError(env, EBADF, "poll").Value());
    } else {
      CallBack(on_change_, env.Undefined());
    }
  } catch (const Napi::Error& error) {
    RaiseUncaught(env, error);
  } catch (const std::exception& exception) {
    RaiseUncaught(env, exception);
  }
  in_callback_ = false;
  if (fd_ < 0) {
    async_context_.reset();  // close() ran inside a callback and left this for us
  } else {
    UpdateStrongReference();
  }
}

bool MountInfoWatch::CallBack(Napi::FunctionReference& callback, napi_value argument) {
  if (callback.IsEmpty() || async_context_ == nullptr) return false;
  // MakeCallback so nextTick and promise jobs queued by the callback run when it returns.
  callback.MakeCallback(Value(), {argument}, *async_context_);
  return true;
}

void MountInfoWatch::UpdateStrongReference() {
  bool want = fd_ >= 0;
  if (want && !strong_reference_) {
    ObjectWrap<MountInfoWatch>::Ref();
    strong_reference_ = true;
  } else if (!want && strong_reference_) {
    ObjectWrap<MountInfoWatch>::Unref();
    strong_reference_ = false;
  }
}

void MountInfoWatch::ReleaseCallbacks() {
  on_change_.Reset();
  on_error_.Reset();
  // MakeCallback is still using the context when close() runs inside a callback.
  if (!in_callback_) async_context_.reset();
  UpdateStrongReference();
}

void MountInfoWatch::Close(const Napi::CallbackInfo& /*info*/) {
  CloseNative();
  ReleaseCallbacks();
}

void MountInfoWatch::RefLoop(const Napi::CallbackInfo& /*info*/) { poller_.Ref(true); }

void MountInfoWatch::UnrefLoop(const Napi::CallbackInfo& /*info*/) { poller_.Ref(false); }

Napi::Value MountInfoWatch::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), fd_ < 0);
}

Napi::Value MountInfoWatch::GetWakeups(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), wakeups_);
}

}  // namespace triggerd
