#include "inotify_handle.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

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
          InstanceMethod<&InotifyHandle::ArmCall>("armCall"),
          InstanceMethod<&InotifyHandle::DisarmCall>("disarmCall"),
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
    if (!armed_.empty() && !bytes.empty()) FireArmed(env, bytes);
    if (!bytes.empty() && fd_ >= 0) {
      CallEvent(Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size()));
    }
  });
}

void InotifyHandle::FireArmed(Napi::Env env, const std::vector<uint8_t>& bytes) {
  size_t offset = 0;
  while (!armed_.empty() && bytes.size() - offset >= sizeof(struct inotify_event)) {
    struct inotify_event header;
    std::memcpy(&header, bytes.data() + offset, sizeof(header));
    offset += sizeof(header) + header.len;
    if (header.len != 0) continue;
    // One call at a time, looked up again after each: a call may disarm the others (an arm
    // dropped by the first one's start must not fire).
    for (;;) {
      auto found = armed_.find(header.wd);
      if (found == armed_.end()) break;
      std::vector<ArmedCall>& list = found->second;
      size_t i = 0;
      while (i < list.size() && (list[i].mask & header.mask) == 0) i++;
      if (i == list.size()) break;
      // One-shot: out of the table before the call.
      Napi::FunctionReference fn = std::move(list[i].fn);
      NativeLaunch* launch = list[i].launch;
      Napi::ObjectReference owner = std::move(list[i].owner);
      list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
      if (list.empty()) armed_.erase(found);
      if (launch != nullptr) launch->launch(launch->context);
      CallGuarded(env, [&] { fn.Call(this->Value(), {}); });
      if (fd_ < 0) return;  // the call closed the handle
    }
  }
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

// armCall(wd, mask, fn, prepared?) → id: fn() once, on the first record about wd's inode itself
// with a bit of `mask`, before that batch's onBatch; with `prepared` (spawn's prepare()), its
// clone is made first, and fn takes the child with prepared.launch().
Napi::Value InotifyHandle::ArmCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int wd = static_cast<int>(IntegerArgument(env, info[0], "wd", 1, INT32_MAX));
  uint32_t mask = static_cast<uint32_t>(IntegerArgument(env, info[1], "mask", 1, UINT32_MAX));
  Napi::Function fn = FunctionArgument(env, info[2], "fn");
  NativeLaunch* launch = nullptr;
  Napi::Object owner;
  if (!info[3].IsUndefined()) {
    bool tagged = false;
    if (info[3].IsObject()) {
      NAPI_THROW_IF_FAILED(env, napi_check_object_type_tag(env, info[3], &kNativeLaunchTag, &tagged),
                           Napi::Value());
    }
    if (!tagged) {
      throw MakeArgumentError(env, "The \"prepared\" argument must be a prepared launch (spawn's prepare())");
    }
    owner = info[3].As<Napi::Object>();
    Napi::Value external = owner.Get(kNativeLaunchProperty);
    if (!external.IsExternal()) {
      throw MakeArgumentError(env, "The \"prepared\" argument must be a prepared launch (spawn's prepare())");
    }
    launch = external.As<Napi::External<NativeLaunch>>().Data();
  }
  if (fd_ < 0) throw MakeSystemError(env, EBADF, "armCall");
  uint32_t id = next_arm_id_++;
  if (next_arm_id_ == 0) next_arm_id_ = 1;
  ArmedCall call{id, mask, Napi::Persistent(fn), launch, Napi::ObjectReference()};
  if (launch != nullptr) call.owner = Napi::Persistent(owner);
  armed_[wd].push_back(std::move(call));
  return Napi::Number::New(env, id);
}

// disarmCall(id) → whether it was still armed.
Napi::Value InotifyHandle::DisarmCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id = static_cast<uint32_t>(IntegerArgument(env, info[0], "id", 1, UINT32_MAX));
  for (auto it = armed_.begin(); it != armed_.end(); ++it) {
    std::vector<ArmedCall>& list = it->second;
    for (size_t i = 0; i < list.size(); i++) {
      if (list[i].id != id) continue;
      list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
      if (list.empty()) armed_.erase(it);
      return Napi::Boolean::New(env, true);
    }
  }
  return Napi::Boolean::New(env, false);
}

void InotifyHandle::RemoveWatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int wd = static_cast<int>(IntegerArgument(env, info[0], "wd", 0, INT32_MAX));
  if (fd_ < 0) throw MakeSystemError(env, EBADF, "inotify_rm_watch");
  // EINVAL: not a watch of this instance (also after IN_IGNORED removed it).
  if (inotify_rm_watch(fd_, wd) != 0) throw MakeSystemError(env, errno, "inotify_rm_watch");
}

}  // namespace triggerd
