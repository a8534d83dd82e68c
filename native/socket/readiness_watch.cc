#include "readiness_watch.h"

#include <fcntl.h>

#include <exception>

#include "../netlink/system_error.h"
#include "../common/instance_tag.h"
#include "../common/js_calls.h"

namespace triggerd {

namespace {

bool FdIsOpen(int fd) { return fd >= 0 && fcntl(fd, F_GETFD) != -1; }

}  // namespace

// Marks the instances of ReadinessWatch (see common/instance_tag.h).
constexpr napi_type_tag kReadinessWatchTag = {0xc36ee85197e0452aULL, 0x34ca6ee56b6e79e1ULL};

ReadinessWatch* ReadinessWatch::Unwrap(Napi::Object object) {
  return UnwrapTagged<ReadinessWatch>(object, &kReadinessWatchTag, "ReadinessWatch");
}

Napi::Function ReadinessWatch::DefineClass(Napi::Env env) {
  return ObjectWrap<ReadinessWatch>::DefineClass(
      env, "ReadinessWatch",
      {
          InstanceMethod<&ReadinessWatch::Pause>("pause"),
          InstanceMethod<&ReadinessWatch::Resume>("resume"),
          InstanceMethod<&ReadinessWatch::Close>("close"),
          InstanceMethod<&ReadinessWatch::RefLoop>("ref"),
          InstanceMethod<&ReadinessWatch::UnrefLoop>("unref"),
          InstanceAccessor<&ReadinessWatch::GetFd>("fd"),
          InstanceAccessor<&ReadinessWatch::GetClosed>("closed"),
          InstanceAccessor<&ReadinessWatch::GetPaused>("paused"),
      });
}

Napi::Object ReadinessWatch::Create(Napi::Env env, SocketAddon* addon,
                                    const Napi::FunctionReference& watch_class, int fd,
                                    Napi::Function on_readable) {
  if (addon->registry()->by_fd.count(fd) != 0) {
    // Two uv_poll handles on one fd make libuv misbehave; the caller has one watch per fd.
    throw MakeSystemError(env, EEXIST, "uv_poll_init");
  }
  addon->SetPendingFd(fd);
  Napi::Object object;
  try {
    object = watch_class.New({on_readable});
  } catch (...) {
    addon->TakePendingFd();
    throw;
  }
  ReadinessWatch* watch = Unwrap(object);
  watch->Start(env);
  return object;
}

ReadinessWatch::ReadinessWatch(const Napi::CallbackInfo& info) : ObjectWrap<ReadinessWatch>(info) {
  Napi::Env env = info.Env();
  TagInstance(env, info.This().As<Napi::Object>(), &kReadinessWatchTag);
  SocketAddon* addon = env.GetInstanceData<SocketAddon>();
  if (addon == nullptr || info.Length() < 1 || !info[0].IsFunction()) {
    throw MakeArgumentError(env, "ReadinessWatch is created by watch()", "ERR_ILLEGAL_CONSTRUCTOR");
  }
  // Everything that can throw happens before the fd is taken.
  on_readable_ = Napi::Persistent(info[0].As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "triggerd:ReadinessWatch",
                                                        info.This().As<Napi::Object>());
  registry_ = addon->registry();
  fd_ = addon->TakePendingFd();
  if (fd_ < 0) {
    throw MakeArgumentError(env, "ReadinessWatch is created by watch()", "ERR_ILLEGAL_CONSTRUCTOR");
  }
}

ReadinessWatch::~ReadinessWatch() { CloseNative(); }

void ReadinessWatch::Start(Napi::Env env) {
  registry_->by_fd[fd_] = this;
  const char* failed = nullptr;
  // A failed uv_poll_init (EBADF, EPERM for a regular file) leaves nothing to close.
  int rc = poller_.Start(env, fd_, this, &failed);
  if (rc != 0) {
    CloseAndRelease();
    throw MakeSystemError(env, -rc, failed);
  }
  UpdateStrongReference();
}

void ReadinessWatch::CloseNative() {
  poller_.Close();
  if (fd_ >= 0 && registry_ != nullptr) {
    auto found = registry_->by_fd.find(fd_);
    if (found != registry_->by_fd.end() && found->second == this) registry_->by_fd.erase(found);
  }
  fd_ = -1;
}

void ReadinessWatch::CloseAndRelease() {
  CloseNative();
  on_readable_.Reset();
  // MakeCallback is still using the context when close() runs inside the callback.
  if (!in_callback_) async_context_.reset();
  UpdateStrongReference();
}

void ReadinessWatch::OnEnvironmentTeardown() { CloseNative(); }

void ReadinessWatch::OnReadable(int status) { HandleWakeUp(status); }

void ReadinessWatch::HandleWakeUp(int status) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  // The local handle keeps the object (and so `this`) alive whatever the callback does.
  Napi::Object self = Value();
  if (self.IsEmpty() || !CanCallIntoJs(env)) return;

  // On POLLERR (status < 0) libuv has stopped the handle. The callback runs all the same: its
  // accept()/read() is what reports (and for most sockets clears) the pending error.
  if (!on_readable_.IsEmpty() && async_context_ != nullptr) {
    in_callback_ = true;
    try {
      // MakeCallback so nextTick and promise jobs queued by the callback run when it returns.
      on_readable_.MakeCallback(self, {}, *async_context_);
    } catch (const Napi::Error& error) {
      RaiseUncaught(env, error);
    } catch (const std::exception& exception) {
      RaiseUncaught(env, exception);
    }
    in_callback_ = false;
  }

  if (fd_ < 0) {
    async_context_.reset();  // close() ran inside the callback and left this for us
    return;
  }
  if (!FdIsOpen(fd_)) {
    // Closed behind our back (not through the addon's close): stop before the number is reused.
    CloseAndRelease();
    return;
  }
  if (status < 0 && !paused_) {
    int rc = poller_.Resume();
    if (rc != 0) paused_ = true;  // shows as `paused`; resume() then throws the reason
  }
  UpdateStrongReference();
}

void ReadinessWatch::UpdateStrongReference() {
  // Watched, the JS object stays alive however the caller keeps it (onReadable must run);
  // paused or closed, it may be collected, which stops the watch (never closes the fd).
  bool want = fd_ >= 0 && !paused_;
  if (want && !strong_reference_) {
    ObjectWrap<ReadinessWatch>::Ref();
    strong_reference_ = true;
  } else if (!want && strong_reference_) {
    ObjectWrap<ReadinessWatch>::Unref();
    strong_reference_ = false;
  }
}

void ReadinessWatch::Pause(const Napi::CallbackInfo& /*info*/) {
  if (fd_ < 0 || paused_) return;
  poller_.Pause();
  paused_ = true;
  UpdateStrongReference();
}

void ReadinessWatch::Resume(const Napi::CallbackInfo& info) {
  if (fd_ < 0 || !paused_) return;
  int rc = poller_.Resume();
  if (rc != 0) throw MakeSystemError(info.Env(), -rc, "uv_poll_start");
  paused_ = false;
  UpdateStrongReference();
}

void ReadinessWatch::Close(const Napi::CallbackInfo& /*info*/) { CloseAndRelease(); }

void ReadinessWatch::RefLoop(const Napi::CallbackInfo& /*info*/) {
  poller_.Ref(true);
}

void ReadinessWatch::UnrefLoop(const Napi::CallbackInfo& /*info*/) {
  poller_.Ref(false);
}

Napi::Value ReadinessWatch::GetFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), fd_);
}

Napi::Value ReadinessWatch::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), fd_ < 0);
}

Napi::Value ReadinessWatch::GetPaused(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), paused_);
}

}  // namespace triggerd
