#include "fanotify_handle.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "../common/arguments.h"
#include "../common/read_records.h"
#include "../netlink/system_error.h"
#include "addon.h"

namespace triggerd {

namespace {

// struct fanotify_event_metadata: event_len u32 @0, vers u8 @4, reserved u8 @5,
// metadata_len u16 @6, mask u64 @8, fd s32 @16, pid s32 @20.
constexpr size_t kMetadataBytes = 24;
constexpr size_t kFdOffset = 16;

uint32_t ReadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

int32_t ReadS32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace

Napi::Function FanotifyHandle::DefineClass(Napi::Env env) {
  return ObjectWrap<FanotifyHandle>::DefineClass(
      env, kClassName,
      {
          InstanceMethod<&FanotifyHandle::Mark>("mark"),
          InstanceMethod<&FanotifyHandle::Respond>("respond"),
          InstanceMethod<&FanotifyHandle::CloseEventFd>("closeEventFd"),
          InstanceMethod<&FanotifyHandle::OpenMount>("openMount"),
          InstanceMethod<&FanotifyHandle::CloseMount>("closeMount"),
          InstanceMethod<&FanotifyHandle::ResolveFileHandle>("resolveFileHandle"),
          InstanceMethod<&FanotifyHandle::Pause>("pause"),
          InstanceMethod<&FanotifyHandle::Resume>("resume"),
          CloseMethod(),
          RefMethod(),
          UnrefMethod(),
          ClosedAccessor(),
          InstanceAccessor<&FanotifyHandle::GetOwnedEventFds>("ownedEventFds"),
          InstanceAccessor<&FanotifyHandle::GetThrottled>("throttled"),
      });
}

Napi::Error FanotifyHandle::MakeError(Napi::Env env, int err, const char* syscall) {
  return FanotifyError(env, err, syscall);
}

FanotifyHandle::FanotifyHandle(const Napi::CallbackInfo& info) : Base(info) {
  read_buffer_ = std::make_unique<uint8_t[]>(kReadBytes);
  TakePending();
}

FanotifyHandle::~FanotifyHandle() { CloseNative(); }

void FanotifyHandle::CloseFds() {
  polling_ = false;
  if (fd_ >= 0) {
    // The group goes first: the kernel answers FAN_ALLOW to every permission event that is
    // still waiting (read or not) and drops every mark with it.
    close(fd_);
    fd_ = -1;
  }
  for (int fd : event_fds_) close(fd);
  event_fds_.clear();
  for (int fd : mount_fds_) close(fd);
  mount_fds_.clear();
}

void FanotifyHandle::OnWakeUp(Napi::Env env, int status) {
  // libuv stops a poll handle whose fd reports an error (status < 0).
  if (status < 0) polling_ = false;
  in_callback_ = true;
  int read_error = 0;
  CallGuarded(env, [&] {
    std::vector<uint8_t> bytes;
    read_error = Drain(&bytes);
    if (!bytes.empty()) {
      CallEvent(Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size()));
    }
  });
  if (read_error != 0 && fd_ >= 0) CallError(env, read_error, "read");
  in_callback_ = false;

  if (fd_ >= 0 && read_error != EBADF) {
    int rc = UpdateThrottle();
    if (rc != 0) CallError(env, -rc, "uv_poll_start");
  }
  FinishWakeUp();
}

int FanotifyHandle::Drain(std::vector<uint8_t>* out) {
  auto may_read = [&] {
    if (fd_ < 0) return false;
    if (event_fds_.size() >= kMaxOwnedEventFds) {
      throttled_ = true;
      return false;
    }
    return true;
  };
  return ReadRecords(fd_, read_buffer_.get(), kReadBytes, kMaxBatchBytes, out, may_read,
                     [&](const uint8_t* data, size_t size) { TakeEventFds(data, size); });
}

void FanotifyHandle::TakeEventFds(const uint8_t* data, size_t size) {
  size_t offset = 0;
  while (size - offset >= kMetadataBytes) {
    uint32_t event_len = ReadU32(data + offset);
    if (event_len < kMetadataBytes || event_len > size - offset) break;  // never from a kernel
    int32_t fd = ReadS32(data + offset + kFdOffset);
    if (fd >= 0) event_fds_.insert(fd);
    offset += event_len;
  }
}

int FanotifyHandle::UpdateThrottle() {
  if (throttled_ && event_fds_.size() < kMaxOwnedEventFds / 2) throttled_ = false;
  bool want = fd_ >= 0 && !paused_ && !throttled_;
  if (want && !polling_) {
    int rc = poller_.Resume();
    if (rc != 0) {
      paused_ = true;  // stays stopped until resume() succeeds
      return rc;
    }
    polling_ = true;
  } else if (!want && polling_) {
    poller_.Pause();
    polling_ = false;
  }
  return 0;
}

int FanotifyHandle::OwnedEventFd(Napi::Env env, const Napi::Value& value, const char* syscall) {
  int fd = static_cast<int>(IntegerArgument(env, value, "fd", 0, INT32_MAX));
  // Only fds this handle read: anything else may be one of Node's own.
  if (event_fds_.count(fd) == 0) throw FanotifyError(env, EBADF, syscall);
  return fd;
}

Napi::Value FanotifyHandle::Mark(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t flags = static_cast<uint32_t>(IntegerArgument(env, info[0], "flags", 0, UINT32_MAX));
  uint64_t mask = static_cast<uint64_t>(
      IntegerArgument(env, info[1], "mask", 0, (int64_t{1} << 53) - 1));
  std::string path = PathArgument(env, info[2]);
  if (fd_ < 0) throw FanotifyErrorWithPath(env, EBADF, "fanotify_mark", path);
  if (fanotify_mark(fd_, flags, mask, AT_FDCWD, path.c_str()) != 0) {
    throw FanotifyErrorWithPath(env, errno, "fanotify_mark", path);
  }
  return env.Undefined();
}

void FanotifyHandle::Respond(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  IntegerArgument(env, info[0], "fd", 0, INT32_MAX);  // every argument is checked first
  uint32_t response =
      static_cast<uint32_t>(IntegerArgument(env, info[1], "response", 1, UINT32_MAX));
  int fd = OwnedEventFd(env, info[0], "write");
  if (fd_ < 0) throw FanotifyError(env, EBADF, "write");
  struct fanotify_response answer;
  answer.fd = fd;
  answer.response = response;
  ssize_t wrote;
  do {
    wrote = write(fd_, &answer, sizeof(answer));
  } while (wrote < 0 && errno == EINTR);
  // ENOENT: not a permission event waiting for an answer (answered already, or a notification).
  if (wrote < 0) throw FanotifyError(env, errno, "write");
  if (static_cast<size_t>(wrote) != sizeof(answer)) throw FanotifyError(env, EIO, "write");
}

void FanotifyHandle::CloseEventFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = OwnedEventFd(env, info[0], "close");
  event_fds_.erase(fd);
  close(fd);
  if (throttled_ && !in_callback_) {
    int rc = UpdateThrottle();
    if (rc != 0) throw FanotifyError(env, -rc, "uv_poll_start");
  }
}

Napi::Value FanotifyHandle::OpenMount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = PathArgument(env, info[0]);
  if (fd_ < 0) throw FanotifyErrorWithPath(env, EBADF, "open", path);
  // Not O_PATH: open_by_handle_at refuses O_PATH fds (EBADF). A directory opened for reading
  // raises FAN_OPEN (and FAN_OPEN_PERM) once, here, and nothing later.
  int fd = open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw FanotifyErrorWithPath(env, errno, "open", path);
  mount_fds_.insert(fd);
  return Napi::Number::New(env, fd);
}

void FanotifyHandle::CloseMount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntegerArgument(env, info[0], "mount", 0, INT32_MAX));
  if (mount_fds_.erase(fd) == 0) throw FanotifyError(env, EBADF, "close");
  close(fd);
}

Napi::Value FanotifyHandle::ResolveFileHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int mount = static_cast<int>(IntegerArgument(env, info[0], "mount", 0, INT32_MAX));
  if (!info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw MakeArgumentError(env, "The \"handle\" argument must be a Buffer or Uint8Array");
  }
  Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
  size_t length = bytes.ByteLength();
  // struct file_handle: handle_bytes u32, handle_type s32, f_handle[handle_bytes].
  uint32_t handle_bytes = length >= 8 ? ReadU32(bytes.Data()) : 0;
  if (length < 8 || handle_bytes == 0 || handle_bytes > MAX_HANDLE_SZ ||
      handle_bytes > length - 8) {
    throw MakeArgumentError(env,
                            "The \"handle\" argument must be a struct file_handle (8 bytes, then "
                            "handle_bytes <= 128 bytes)",
                            "ERR_INVALID_ARG_VALUE");
  }
  if (fd_ < 0 || mount_fds_.count(mount) == 0) {
    throw FanotifyError(env, EBADF, "open_by_handle_at");
  }
  std::vector<uint8_t> storage(sizeof(struct file_handle) + handle_bytes);
  auto* handle = reinterpret_cast<struct file_handle*>(storage.data());
  std::memcpy(storage.data(), bytes.Data(), 8 + handle_bytes);
  int fd = open_by_handle_at(mount, handle, O_PATH | O_CLOEXEC);
  if (fd < 0) throw FanotifyError(env, errno, "open_by_handle_at");
  char link[64];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  char target[PATH_MAX];
  ssize_t got = readlink(link, target, sizeof(target));
  int err = errno;
  close(fd);
  if (got < 0) throw FanotifyError(env, err, "readlink");
  if (static_cast<size_t>(got) >= sizeof(target)) throw FanotifyError(env, ENAMETOOLONG, "readlink");
  return Napi::String::New(env, target, static_cast<size_t>(got));
}

void FanotifyHandle::Pause(const Napi::CallbackInfo& /*info*/) {
  if (fd_ < 0 || paused_) return;
  paused_ = true;
  UpdateThrottle();  // only stops
  UpdateStrongReference();
}

void FanotifyHandle::Resume(const Napi::CallbackInfo& info) {
  if (fd_ < 0 || !paused_) return;
  paused_ = false;
  int rc = UpdateThrottle();
  UpdateStrongReference();
  if (rc != 0) throw FanotifyError(info.Env(), -rc, "uv_poll_start");
}

Napi::Value FanotifyHandle::GetOwnedEventFds(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(event_fds_.size()));
}

Napi::Value FanotifyHandle::GetThrottled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), throttled_);
}

}  // namespace triggerd
