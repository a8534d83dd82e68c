// The skeleton every "polled handle" of the addons shares (InotifyHandle, FanotifyHandle,
// ClockWatch, MountInfoWatch, AutofsMount, NotifySocket, UeventSocket): a JavaScript object that
// owns one fd watched with an FdPoller on the environment's own loop, calls an event callback
// (onBatch / onChange) and onError from its wake-ups, and has pause/resume/close/ref/unref and
// `closed`. It is made only by its addon's open function (PolledFdAddon::CreateHandle hands the
// fds over), tags its instances (common/instance_tag.h), holds a strong reference to itself while
// it is watched, and closes its fds at environment teardown without calling into JavaScript.
//
// Derived (CRTP) declares `friend Base;` and provides:
//   static constexpr napi_type_tag kTypeTag;   its instances' tag
//   static constexpr const char* kClassName;   "InotifyHandle" (also names the async resource)
//   static constexpr const char* kCreatedBy;   "InotifyHandle is created by openInotify()"
//   void OnWakeUp(Napi::Env env, int status);  what one wake-up does (drain, call back)
//   static Napi::Function DefineClass(Napi::Env env);  its JS-visible method list
// and may hide the defaults below:
//   static constexpr int kPollEvents;          uv_poll's mask (UV_READABLE)
//   static Napi::Error MakeError(env, err, syscall);   the errors it raises (MakeSystemError)
//   void Adopt(Pending* pending);              takes the pending fds (Pending = int: the one fd)
//   static void ClosePending(Pending* pending); closes fds no constructor took (int, or `fd`)
//   void CloseFds();                           closes what it owns besides the poller (fd_)
// A Derived that owns more than fd_ closes it in its own destructor (CloseNative()).
#pragma once

#include <napi.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <memory>
#include <string>

#include "../netlink/system_error.h"
#include "fd_poller.h"
#include "instance_tag.h"
#include "js_calls.h"

namespace triggerd {

template <typename Derived, typename Addon, typename Pending = int>
class PolledFdHandle : public Napi::ObjectWrap<Derived>, private FdPollerClient {
 public:
  using Base = PolledFdHandle;
  using PendingType = Pending;
  static constexpr int kPollEvents = UV_READABLE;

  // Only objects this class made: accessors called on a foreign `this` reach Unwrap too
  // (see common/instance_tag.h). node-addon-api calls it as Derived::Unwrap.
  static Derived* Unwrap(Napi::Object object) {
    return UnwrapTagged<Derived>(object, &Derived::kTypeTag, Derived::kClassName);
  }

  // Starts watching fd_. On failure everything is closed, the callbacks are released and the
  // error thrown.
  void Start(Napi::Env env) {
    const char* failed = nullptr;
    int rc = poller_.Start(env, fd_, this, &failed, Derived::kPollEvents);
    if (rc != 0) {
      CloseNative();
      ReleaseCallbacks();
      throw Derived::MakeError(env, -rc, failed);
    }
    UpdateStrongReference();
  }

  // Stops watching and closes the fds without calling into JavaScript (safe from the destructor
  // and from the environment's teardown). Idempotent.
  void CloseNative() {
    poller_.Close();
    derived().CloseFds();
  }

  static Napi::Error MakeError(Napi::Env env, int err, const char* syscall) {
    return MakeSystemError(env, err, syscall);
  }

  // Closes what no constructor took: the one fd (Pending = int), or a Pending struct's `fd`.
  static void ClosePending(int* fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
  template <typename Opened>
  static void ClosePending(Opened* opened) {
    ClosePending(&opened->fd);
  }

 protected:
  using Wrap = Napi::ObjectWrap<Derived>;

  // Tags the instance, refuses to be made by JavaScript (nothing pending, or no callbacks), and
  // keeps the callbacks. Everything that can throw happens before the fds are taken: Derived's
  // constructor allocates what it needs, then calls TakePending().
  explicit PolledFdHandle(const Napi::CallbackInfo& info) : Wrap(info) {
    Napi::Env env = info.Env();
    TagInstance(env, info.This().As<Napi::Object>(), &Derived::kTypeTag);
    Addon* addon = env.GetInstanceData<Addon>();
    pending_ = addon != nullptr ? addon->TakePending() : nullptr;
    if (pending_ == nullptr || info.Length() < 2 || !info[0].IsFunction() ||
        !info[1].IsFunction()) {
      throw MakeArgumentError(env, Derived::kCreatedBy, "ERR_ILLEGAL_CONSTRUCTOR");
    }
    on_event_ = Napi::Persistent(info[0].As<Napi::Function>());
    on_error_ = Napi::Persistent(info[1].As<Napi::Function>());
    async_context_ = std::make_unique<Napi::AsyncContext>(
        env, (std::string("triggerd:") + Derived::kClassName).c_str(),
        info.This().As<Napi::Object>());
  }

  ~PolledFdHandle() override {
    poller_.Close();
    if (fd_ >= 0) close(fd_);
  }

  // The last step of Derived's constructor: the fds are the handle's from here.
  void TakePending() {
    derived().Adopt(pending_);
    pending_ = nullptr;
  }
  void Adopt(int* fd) {
    fd_ = *fd;
    *fd = -1;
  }
  void CloseFds() {
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

  // Calls the callback unless close() released it; false when it was not called. MakeCallback
  // (not Call) so process.nextTick and promise jobs queued by the callback run when it returns,
  // and async_hooks see one async resource per handle.
  bool CallBack(Napi::FunctionReference& callback, napi_value argument) {
    if (callback.IsEmpty() || async_context_ == nullptr) return false;
    callback.MakeCallback(this->Value(), {argument}, *async_context_);
    return true;
  }
  bool CallEvent(napi_value argument) { return CallBack(on_event_, argument); }
  // onError(Derived::MakeError(err, syscall)); what it throws is raised as uncaught.
  void CallError(Napi::Env env, int err, const char* syscall) {
    CallGuarded(env, [&] { CallBack(on_error_, Derived::MakeError(env, err, syscall).Value()); });
  }

  // The wake-up of a handle that hands over batches: `deliver(&read_error)` drains the fd and
  // calls onBatch, setting read_error to 0 or the errno of the failed read, which then goes to
  // onError as `syscall`. libuv stops a poll handle whose fd reports an error (status < 0); such
  // an fd has no error state left to clear once drained, so it is watched again unless paused
  // or the read said the fd itself is gone.
  template <typename Deliver>
  void DeliverBatch(Napi::Env env, int status, const char* syscall, Deliver deliver) {
    in_callback_ = true;
    int read_error = 0;
    CallGuarded(env, [&] { deliver(&read_error); });
    if (read_error != 0 && fd_ >= 0) CallError(env, read_error, syscall);
    in_callback_ = false;
    if (status < 0 && fd_ >= 0 && !paused_ && read_error != EBADF && read_error != ENOTSOCK) {
      int rc = poller_.Resume();
      if (rc != 0) {
        paused_ = true;
        CallError(env, -rc, "uv_poll_start");
      }
    }
    FinishWakeUp();
  }

  // The end of every wake-up.
  void FinishWakeUp() {
    if (fd_ < 0) {
      async_context_.reset();  // close() ran inside a callback and left this for us
    } else {
      UpdateStrongReference();
    }
  }

  // Holds a strong reference to the JS object while it is watched (so the callbacks can run
  // however the caller keeps it); paused or closed, it may be garbage collected, which closes
  // the fd.
  void UpdateStrongReference() {
    bool want = fd_ >= 0 && !paused_ && poller_.started();
    if (want && !strong_reference_) {
      Wrap::Ref();
      strong_reference_ = true;
    } else if (!want && strong_reference_) {
      Wrap::Unref();
      strong_reference_ = false;
    }
  }

  void ReleaseCallbacks() {
    on_event_.Reset();
    on_error_.Reset();
    // MakeCallback is still using the context when close() runs inside a callback.
    if (!in_callback_) async_context_.reset();
    UpdateStrongReference();
  }

  // The JS-visible members every handle may list in its DefineClass (pause, resume, close, ref,
  // unref, closed).
  static Napi::ClassPropertyDescriptor<Derived> PauseMethod() {
    return Wrap::InstanceMethod("pause", &PolledFdHandle::Pause);
  }
  static Napi::ClassPropertyDescriptor<Derived> ResumeMethod() {
    return Wrap::InstanceMethod("resume", &PolledFdHandle::Resume);
  }
  static Napi::ClassPropertyDescriptor<Derived> CloseMethod() {
    return Wrap::InstanceMethod("close", &PolledFdHandle::Close);
  }
  static Napi::ClassPropertyDescriptor<Derived> RefMethod() {
    return Wrap::InstanceMethod("ref", &PolledFdHandle::RefLoop);
  }
  static Napi::ClassPropertyDescriptor<Derived> UnrefMethod() {
    return Wrap::InstanceMethod("unref", &PolledFdHandle::UnrefLoop);
  }
  static Napi::ClassPropertyDescriptor<Derived> ClosedAccessor() {
    return Wrap::InstanceAccessor("closed", &PolledFdHandle::GetClosed, nullptr);
  }

  void Pause(const Napi::CallbackInfo& /*info*/) {
    if (fd_ < 0 || paused_) return;
    poller_.Pause();
    paused_ = true;
    UpdateStrongReference();
  }
  void Resume(const Napi::CallbackInfo& info) {
    if (fd_ < 0 || !paused_) return;
    int rc = poller_.Resume();
    if (rc != 0) throw Derived::MakeError(info.Env(), -rc, "uv_poll_start");
    paused_ = false;
    UpdateStrongReference();
  }
  void Close(const Napi::CallbackInfo& /*info*/) {
    CloseNative();
    ReleaseCallbacks();
  }
  void RefLoop(const Napi::CallbackInfo& /*info*/) { poller_.Ref(true); }
  void UnrefLoop(const Napi::CallbackInfo& /*info*/) { poller_.Ref(false); }
  Napi::Value GetClosed(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), fd_ < 0);
  }

  int fd_ = -1;
  FdPoller poller_;
  bool paused_ = false;
  bool strong_reference_ = false;
  bool in_callback_ = false;
  Napi::FunctionReference on_event_;
  Napi::FunctionReference on_error_;
  std::unique_ptr<Napi::AsyncContext> async_context_;

 private:
  Derived& derived() { return static_cast<Derived&>(*this); }

  // FdPollerClient
  void OnReadable(int status) override {
    Napi::Env env = this->Env();
    Napi::HandleScope scope(env);
    // The local handle keeps the object (and so `this`) alive whatever the callbacks do.
    Napi::Object self = this->Value();
    // Shutting down: leave what is queued in the kernel; it goes with the fd.
    if (self.IsEmpty() || !CanCallIntoJs(env)) return;
    derived().OnWakeUp(env, status);
  }
  void OnEnvironmentTeardown() override { CloseNative(); }

  Pending* pending_ = nullptr;  // during construction only
};

}  // namespace triggerd
