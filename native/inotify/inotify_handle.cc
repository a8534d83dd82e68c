#include "inotify_handle.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>

#include "../common/arguments.h"
#include "../common/read_records.h"
#include "../netlink/system_error.h"
#include "addon.h"

namespace triggerd {

Napi::Function InotifyHandle::DefineClass(Napi::Env env) {
  return ObjectWrap<InotifyHandle>::DefineClass(
      env, kClassName,
      {
          InstanceMethod<&InotifyHandle::AddWatch>("addWatch"),
          InstanceMethod<&InotifyHandle::RemoveWatch>("removeWatch"),
          PauseMethod(),
          ResumeMethod(),
          CloseMethod(),
          RefMethod(),
          UnrefMethod(),
          ClosedAccessor(),
      });
}

InotifyHandle::InotifyHandle(const Napi::CallbackInfo& info) : Base(info) {
  read_buffer_ = std::make_unique<uint8_t[]>(kReadBytes);
  TakePending();
}

void InotifyHandle::OnWakeUp(Napi::Env env, int status) {
  // An inotify fd has no error state to clear, so a poll stopped by one is restarted.
  DeliverBatch(env, status, "read", [&](int* read_error) {
    std::vector<uint8_t> bytes;
    *read_error = Drain(&bytes);
    if (!bytes.empty()) {
      CallEvent(Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size()));
    }
  });
}

int InotifyHandle::Drain(std::vector<uint8_t>* out) {
  return ReadRecords(
      fd_, read_buffer_.get(), kReadBytes, kMaxBatchBytes, out, [&] { return fd_ >= 0; },
      [](const uint8_t*, size_t) {});
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

}  // namespace triggerd
