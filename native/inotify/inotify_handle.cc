#include "inotify_handle.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include "../netlink/system_error.h"
#include "addon.h"
#include "../common/instance_tag.h"
#include "../common/js_calls.h"

namespace triggerd {

// Marks the instances of InotifyHandle (see common/instance_tag.h).
constexpr napi_type_tag kInotifyHandleTag = {0x0ccd5bcadd314eb0ULL, 0x500df749208f981fULL};

InotifyHandle* InotifyHandle::Unwrap(Napi::Object object) {
  return UnwrapTagged<InotifyHandle>(object, &kInotifyHandleTag, "InotifyHandle");
}

Napi::Function InotifyHandle::DefineClass(Napi::Env env) {
  return ObjectWrap<InotifyHandle>::DefineClass(
      env, "InotifyHandle",
      {
          InstanceMethod<&InotifyHandle::AddWatch>("addWatch"),
          InstanceMethod<&InotifyHandle::RemoveWatch>("removeWatch"),
          InstanceMethod<&InotifyHandle::Pause>("pause"),
          InstanceMethod<&InotifyHandle::Resume>("resume"),
          InstanceMethod<&InotifyHandle::Close>("close"),
          InstanceMethod<&InotifyHandle::RefLoop>("ref"),
          InstanceMethod<&InotifyHandle::UnrefLoop>("unref"),
          InstanceAccessor<&InotifyHandle::GetClosed>("closed"),
      });
}

Napi::Object InotifyHandle::Create(Napi::Env env, InotifyAddon* addon,
                                   const Napi::FunctionReference& handle_class, int fd,
                                   Napi::Function on_batch, Napi::Function on_error) {
  Napi::Object object;
  addon->SetPendingFd(fd);
  try {
    object = handle_class.New({on_batch, on_error});
  } catch (...) {
    // The constructor takes the fd only once nothing else can fail there.
    int left = addon->TakePendingFd();
    if (left >= 0) close(left);
    throw;
  }
  InotifyHandle* handle = Unwrap(object);
  handle->Start(env);
  return object;
}

InotifyHandle::InotifyHandle(const Napi::CallbackInfo& info) : ObjectWrap<InotifyHandle>(info) {
  Napi::Env env = info.Env();
  TagInstance(env, info.This().As<Napi::Object>(), &kInotifyHandleTag);
  InotifyAddon* addon = env.GetInstanceData<InotifyAddon>();
  bool pending = addon != nullptr && info.Length() >= 2 && info[0].IsFunction() &&
                 info[1].IsFunction();
  if (!pending) {
    throw MakeArgumentError(env, "InotifyHandle is created by openInotify()",
                            "ERR_ILLEGAL_CONSTRUCTOR");
  }
  // Everything that can throw happens before the fd is taken.
  on_batch_ = Napi::Persistent(info[0].As<Napi::Function>());
  on_error_ = Napi::Persistent(info[1].As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "triggerd:InotifyHandle",
                                                        info.This().As<Napi::Object>());
  read_buffer_ = std::make_unique<uint8_t[]>(kReadBytes);
  fd_ = addon->TakePendingFd();
  if (fd_ < 0) {
    throw MakeArgumentError(env, "InotifyHandle is created by openInotify()",
                            "ERR_ILLEGAL_CONSTRUCTOR");
  }
}

InotifyHandle::~InotifyHandle() { CloseNative(); }

void InotifyHandle::Start(Napi::Env env) {
  const char* failed = nullptr;
  int rc = poller_.Start(env, fd_, this, &failed);
  if (rc != 0) {
    CloseNative();
    ReleaseCallbacks();
    throw MakeSystemError(env, -rc, failed);
  }
  UpdateStrongReference();
}

void InotifyHandle::CloseNative() {
  poller_.Close();
  if (fd_ >= 0) {
    // The kernel drops every watch of the instance with it.
    close(fd_);
    fd_ = -1;
  }
}

void InotifyHandle::OnEnvironmentTeardown() { CloseNative(); }

void InotifyHandle::OnReadable(int status) { HandleWakeUp(status); }

void InotifyHandle::HandleWakeUp(int status) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  // The local handle keeps the object (and so `this`) alive whatever the callbacks do.
  Napi::Object self = Value();
  // Shutting down: leave the records in the kernel; they go with the fd.
  if (self.IsEmpty() || !CanCallIntoJs(env)) return;

  in_callback_ = true;
  int read_error = 0;
  try {
    std::vector<uint8_t> bytes;
    read_error = Drain(&bytes);
    if (!bytes.empty()) {
      CallBack(on_batch_, Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size()));
    }
  } catch (const Napi::Error& error) {
    RaiseUncaught(env, error);
  } catch (const std::exception& exception) {
    RaiseUncaught(env, exception);
  }
  if (read_error != 0 && fd_ >= 0) {
    try {
      CallBack(on_error_, MakeSystemError(env, read_error, "read").Value());
    } catch (const Napi::Error& error) {
      RaiseUncaught(env, error);
    } catch (const std::exception& exception) {
      RaiseUncaught(env, exception);
    }
  }
  in_callback_ = false;

  // libuv stops a poll handle whose fd reports an error (status < 0); an inotify fd has no error
  // state to clear, so watch again unless the fd itself is gone.
  if (status < 0 && fd_ >= 0 && !paused_ && read_error != EBADF) {
    int rc = poller_.Resume();
    if (rc != 0) {
      paused_ = true;
      try {
        CallBack(on_error_, MakeSystemError(env, -rc, "uv_poll_start").Value());
      } catch (const Napi::Error& error) {
        RaiseUncaught(env, error);
      } catch (const std::exception& exception) {
        RaiseUncaught(env, exception);
      }
    }
  }
  if (fd_ < 0) {
    async_context_.reset();  // close() ran inside a callback and left this for us
  } else {
    UpdateStrongReference();
  }
}

int InotifyHandle::Drain(std::vector<uint8_t>* out) {
  while (out->size() < kMaxBatchBytes && fd_ >= 0) {
    // The kernel returns whole records only, so consecutive reads concatenate into one valid
    // record stream.
    ssize_t got = read(fd_, read_buffer_.get(), kReadBytes);
    if (got < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return 0;
      return err;
    }
    if (got == 0) return 0;
    out->insert(out->end(), read_buffer_.get(), read_buffer_.get() + got);
  }
  return 0;
}

bool InotifyHandle::CallBack(Napi::FunctionReference& callback, napi_value argument) {
  if (callback.IsEmpty() || async_context_ == nullptr) return false;
  // MakeCallback so nextTick and promise jobs queued by the callback run when it returns.
  callback.MakeCallback(Value(), {argument}, *async_context_);
  return true;
}

void InotifyHandle::UpdateStrongReference() {
  bool want = fd_ >= 0 && !paused_;
  if (want && !strong_reference_) {
    ObjectWrap<InotifyHandle>::Ref();
    strong_reference_ = true;
  } else if (!want && strong_reference_) {
    ObjectWrap<InotifyHandle>::Unref();
    strong_reference_ = false;
  }
}

void InotifyHandle::ReleaseCallbacks() {
  on_batch_.Reset();
  on_error_.Reset();
  // MakeCallback is still using the context when close() runs inside a callback.
  if (!in_callback_) async_context_.reset();
  UpdateStrongReference();
}

Napi::Value InotifyHandle::AddWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = PathArgument(env, info[0]);
  uint32_t mask = static_cast<uint32_t>(IntegerArgument(env, info[1], "mask", 1, UINT32_MAX));
  if (fd_ < 0) throw SystemErrorWithPath(env, EBADF, "inotify_add_watch", path);
  int wd = inotify_add_watch(fd_, path.c_str(), mask);
  if (wd < 0) throw SystemErrorWithPath(env, errno, "inotify_add_watch", path);
  return Napi::Number::New(env, wd);
}

void InotifyHandle::RemoveWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int wd = static_cast<int>(IntegerArgument(env, info[0], "wd", 0, INT32_MAX));
  if (fd_ < 0) throw MakeSystemError(env, EBADF, "inotify_rm_watch");
  // EINVAL: not a watch of this instance (also after IN_IGNORED removed it).
  if (inotify_rm_watch(fd_, wd) != 0) throw MakeSystemError(env, errno, "inotify_rm_watch");
}

void InotifyHandle::Pause(const Napi::CallbackInfo& /*info*/) {
  if (fd_ < 0 || paused_) return;
  poller_.Pause();
  paused_ = true;
  UpdateStrongReference();
}

void InotifyHandle::Resume(const Napi::CallbackInfo& info) {
  if (fd_ < 0 || !paused_) return;
  int rc = poller_.Resume();
  if (rc != 0) throw MakeSystemError(info.Env(), -rc, "uv_poll_start");
  paused_ = false;
  UpdateStrongReference();
}

void InotifyHandle::Close(const Napi::CallbackInfo& /*info*/) {
  CloseNative();
  ReleaseCallbacks();
}

void InotifyHandle::RefLoop(const Napi::CallbackInfo& /*info*/) {
  poller_.Ref(true);
}

void InotifyHandle::UnrefLoop(const Napi::CallbackInfo& /*info*/) {
  poller_.Ref(false);
}

Napi::Value InotifyHandle::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), fd_ < 0);
}

}  // namespace triggerd
