#include "autofs_mount.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <thread>

#include "../common/arguments.h"
#include "../netlink/system_error.h"
#include "addon.h"
#include "dev_ioctl.h"

namespace triggerd {

namespace {

// What one expire run reports back to the loop thread.
struct ExpireResult {
  int expired = 0;
  int err = 0;  // 0, or the errno that ended the run (EAGAIN: nothing left idle, not an error)
  const char* syscall = "ioctl";
};

}  // namespace

Napi::Function AutofsMount::DefineClass(Napi::Env env) {
  return ObjectWrap<AutofsMount>::DefineClass(
      env, kClassName,
      {
          InstanceMethod<&AutofsMount::Ready>("ready"),
          InstanceMethod<&AutofsMount::Fail>("fail"),
          InstanceMethod<&AutofsMount::SetTimeout>("setTimeout"),
          InstanceMethod<&AutofsMount::Expire>("expire"),
          InstanceMethod<&AutofsMount::Catatonic>("catatonic"),
          InstanceMethod<&AutofsMount::AskUmount>("askUmount"),
          InstanceMethod<&AutofsMount::Unmount>("unmount"),
          CloseMethod(),
          RefMethod(),
          UnrefMethod(),
          InstanceAccessor<&AutofsMount::GetClosed>("closed"),
          InstanceAccessor<&AutofsMount::GetDevId>("devId"),
          InstanceAccessor<&AutofsMount::GetWhere>("where"),
          InstanceAccessor<&AutofsMount::GetPipeFd>("pipeFd"),
          InstanceAccessor<&AutofsMount::GetStrictExpire>("strictExpire"),
          InstanceAccessor<&AutofsMount::GetProtocol>("protocol"),
      });
}

void AutofsMount::ClosePending(PendingAutofsMount* pending) {
  if (pending->pipe_fd >= 0) close(pending->pipe_fd);
  if (pending->control_fd >= 0) close(pending->control_fd);
  pending->pipe_fd = -1;
  pending->control_fd = -1;
}

AutofsMount::AutofsMount(const Napi::CallbackInfo& info) : Base(info) { TakePending(); }

AutofsMount::~AutofsMount() { CloseNative(); }

void AutofsMount::Adopt(PendingAutofsMount* pending) {
  fd_ = pending->pipe_fd;
  control_fd_ = pending->control_fd;
  where_ = pending->where;
  devid_ = pending->devid;
  strict_expire_ = pending->strict_expire;
  proto_version_ = pending->proto_version;
  proto_sub_version_ = pending->proto_sub_version;
  pending->pipe_fd = -1;
  pending->control_fd = -1;
}

void AutofsMount::CloseFds() {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
  if (control_fd_ >= 0) {
    close(control_fd_);
    control_fd_ = -1;
  }
}

void AutofsMount::OnWakeUp(Napi::Env env, int status) {
  in_callback_ = true;
  int read_error = 0;
  bool hang_up = false;
  CallGuarded(env, [&] {
    Napi::Array batch = Napi::Array::New(env);
    uint32_t n = 0;
    uint8_t buffer[kReadBytes];
    while (n < kMaxPacketsPerBatch && fd_ >= 0) {
      ssize_t got = read(fd_, buffer, sizeof(buffer));
      if (got < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) read_error = errno;
        break;
      }
      if (got == 0) {
        // Every write end is gone: the mount was unmounted (or made catatonic) under us.
        hang_up = true;
        break;
      }
      batch.Set(n++, Napi::Buffer<uint8_t>::Copy(env, buffer, static_cast<size_t>(got)));
    }
    if (n > 0) CallEvent(batch);
  });
  if ((read_error != 0 || hang_up || status < 0) && fd_ >= 0) {
    // A pipe whose writers are gone stays readable for ever: stop watching, then say why.
    poller_.Pause();
    int err = read_error != 0 ? read_error : hang_up ? EPIPE : -status;
    CallError(env, err, read_error != 0 ? "read" : "poll");
    if (fd_ >= 0) poller_.Close();  // unwatched, it no longer holds the object
  }
  in_callback_ = false;
  FinishWakeUp();
}

template <typename Command>
int AutofsMount::WithMountFd(Command command, const char** failed) {
  if (control_fd_ < 0) {
    *failed = "ioctl";
    return EBADF;
  }
  int ioctl_fd = OpenAutofsMount(control_fd_, where_, devid_);
  if (ioctl_fd < 0) {
    *failed = "AUTOFS_DEV_IOCTL_OPENMOUNT";
    return -ioctl_fd;
  }
  int err = command(ioctl_fd);
  CloseAutofsMount(control_fd_, ioctl_fd);
  return err;
}

void AutofsMount::ThrowCommandError(Napi::Env env, int err, const char* syscall) {
  throw SystemErrorWithPath(env, err, syscall, where_);
}

void AutofsMount::Ready(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t token = static_cast<uint32_t>(IntegerArgument(env, info[0], "token", 1, UINT32_MAX));
  const char* failed = "AUTOFS_DEV_IOCTL_READY";
  int err = WithMountFd([&](int fd) { return AutofsReady(control_fd_, fd, token); }, &failed);
  if (err != 0) ThrowCommandError(env, err, failed);
}

void AutofsMount::Fail(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t token = static_cast<uint32_t>(IntegerArgument(env, info[0], "token", 1, UINT32_MAX));
  // A positive errno here; the kernel wants it negative (a positive status hangs the waiter).
  int32_t err_no = static_cast<int32_t>(IntegerArgument(env, info[1], "errno", 1, 4095));
  const char* failed = "AUTOFS_DEV_IOCTL_FAIL";
  int err =
      WithMountFd([&](int fd) { return AutofsFail(control_fd_, fd, token, -err_no); }, &failed);
  if (err != 0) ThrowCommandError(env, err, failed);
}

void AutofsMount::SetTimeout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t seconds =
      static_cast<uint64_t>(IntegerArgument(env, info[0], "seconds", 0, INT32_MAX));
  const char* failed = "AUTOFS_DEV_IOCTL_TIMEOUT";
  int err =
      WithMountFd([&](int fd) { return AutofsSetTimeout(control_fd_, fd, seconds); }, &failed);
  if (err != 0) ThrowCommandError(env, err, failed);
}

void AutofsMount::Catatonic(const Napi::CallbackInfo& info) {
  const char* failed = "AUTOFS_DEV_IOCTL_CATATONIC";
  int err = WithMountFd([&](int fd) { return AutofsCatatonic(control_fd_, fd); }, &failed);
  if (err != 0) ThrowCommandError(info.Env(), err, failed);
}

Napi::Value AutofsMount::AskUmount(const Napi::CallbackInfo& info) {
  const char* failed = "AUTOFS_DEV_IOCTL_ASKUMOUNT";
  uint32_t may = 0;
  int err = WithMountFd([&](int fd) { return AutofsAskUmount(control_fd_, fd, &may); }, &failed);
  if (err != 0) ThrowCommandError(info.Env(), err, failed);
  return Napi::Boolean::New(info.Env(), may != 0);
}

// expire(how, callback): AUTOFS_DEV_IOCTL_EXPIRE in a loop on a thread of its own (each call
// blocks until the expire packet it causes is answered on this loop), until EAGAIN: nothing
// left idle. callback(error | null, expiredCount) on the loop thread.
void AutofsMount::Expire(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t how = static_cast<uint32_t>(IntegerArgument(env, info[0], "how", 0, 7));
  if (!info[1].IsFunction()) {
    throw MakeArgumentError(env, "The \"callback\" argument must be a function");
  }
  if (control_fd_ < 0) ThrowCommandError(env, EBADF, "AUTOFS_DEV_IOCTL_EXPIRE");
  int control = fcntl(control_fd_, F_DUPFD_CLOEXEC, 3);
  if (control < 0) ThrowCommandError(env, errno, "fcntl");
  std::string where = where_;
  dev_t devid = devid_;
  auto tsfn = Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(),
                                            "triggerd:autofsExpire", 0, 1);
  std::thread([tsfn, control, where, devid, how]() mutable {
    auto* result = new ExpireResult();
    // Bounded: a mount with more idle entries than this is expired over several runs.
    for (int i = 0; i < 4096; i++) {
      int ioctl_fd = OpenAutofsMount(control, where, devid);
      if (ioctl_fd < 0) {
        result->err = -ioctl_fd;
        result->syscall = "AUTOFS_DEV_IOCTL_OPENMOUNT";
        break;
      }
      int err = AutofsExpire(control, ioctl_fd, how);
      CloseAutofsMount(control, ioctl_fd);
      if (err != 0) {
        result->err = err;
        result->syscall = "AUTOFS_DEV_IOCTL_EXPIRE";
        break;
      }
      result->expired++;
    }
    close(control);
    napi_status status = tsfn.BlockingCall(
        result, [](Napi::Env env, Napi::Function callback, ExpireResult* r) {
          std::unique_ptr<ExpireResult> owned(r);
          if (env == nullptr || callback.IsEmpty()) return;
          Napi::Value error = env.Null();
          if (r->err != 0 && r->err != EAGAIN) error = MakeSystemError(env, r->err, r->syscall).Value();
          callback.Call({error, Napi::Number::New(env, r->expired)});
        });
    if (status != napi_ok) delete result;
    tsfn.Release();
  }).detach();
}

// Lazily unmounts what is stacked at the mount point down to and including this autofs mount
// (systemd's repeat_unmount). Returns how many mounts went.
Napi::Value AutofsMount::Unmount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int count = 0;
  for (int i = 0; i < 16; i++) {
    struct stat st;
    bool ours = stat(where_.c_str(), &st) == 0 && st.st_dev == devid_;
    if (umount2(where_.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
      int err = errno;
      if (err == EINVAL || err == ENOENT) break;  // nothing (more) mounted there
      throw SystemErrorWithPath(env, err, "umount2", where_);
    }
    count++;
    if (ours) break;
  }
  return Napi::Number::New(env, count);
}

Napi::Value AutofsMount::GetClosed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), fd_ < 0 && control_fd_ < 0);
}

Napi::Value AutofsMount::GetDevId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(devid_));
}

Napi::Value AutofsMount::GetWhere(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), where_);
}

Napi::Value AutofsMount::GetPipeFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), fd_);
}

Napi::Value AutofsMount::GetStrictExpire(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), strict_expire_);
}

Napi::Value AutofsMount::GetProtocol(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", Napi::Number::New(env, proto_version_));
  out.Set("subVersion", Napi::Number::New(env, proto_sub_version_));
  return out;
}

}  // namespace triggerd
