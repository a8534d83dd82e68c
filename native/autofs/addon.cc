// Entry point of triggerd_autofs.node: mountAutofs() (an autofs mount at a directory with its
// packet pipe watched on the environment's loop, see AutofsMount), unmountLazy() and
// processGroup(), the pgrp the kernel treats as "the daemon" (it never blocks on the traps).
#include "addon.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "../common/arguments.h"
#include "../netlink/system_error.h"
#include "autofs_mount.h"
#include "dev_ioctl.h"

namespace triggerd {

std::string AbsolutePathArgument(Napi::Env env, const Napi::Value& value, const char* name) {
  if (!value.IsString()) {
    throw MakeArgumentError(env, std::string("The \"") + name + "\" argument must be a string");
  }
  std::string path = value.As<Napi::String>().Utf8Value();
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos ||
      path.size() >= 4096) {
    throw MakeArgumentError(
        env, std::string("The \"") + name + "\" argument must be an absolute path without NUL bytes",
        "ERR_INVALID_ARG_VALUE");
  }
  return path;
}

AutofsAddon::AutofsAddon(Napi::Env env, Napi::Object exports) : PolledFdAddon(env) {
  DefineAddon(exports,
              {
                  InstanceMethod<&AutofsAddon::MountAutofs>("mountAutofs", napi_enumerable),
                  InstanceMethod<&AutofsAddon::UnmountLazy>("unmountLazy", napi_enumerable),
                  InstanceMethod<&AutofsAddon::ProcessGroup>("processGroup", napi_enumerable),
              });
}

namespace {

std::string StringOption(Napi::Env env, Napi::Object options, const char* name) {
  Napi::Value v = options.Get(name);
  if (!v.IsString()) {
    throw MakeArgumentError(env, std::string("The \"options.") + name + "\" property must be a string");
  }
  std::string s = v.As<Napi::String>().Utf8Value();
  // Mount options are a comma-separated list: a value must not smuggle in another option.
  if (s.find_first_of(std::string(",\0\n", 3)) != std::string::npos || s.size() > 255) {
    throw MakeArgumentError(env, std::string("The \"options.") + name + "\" property is not valid",
                            "ERR_INVALID_ARG_VALUE");
  }
  return s;
}

}  // namespace

// mountAutofs({ where, source, kind: 'direct'|'indirect', strictExpire, timeoutSec }, onBatch,
// onError): systemd's automount_enter_waiting, step by step. On failure nothing is left mounted.
Napi::Value AutofsAddon::MountAutofs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) throw MakeArgumentError(env, "The \"options\" argument must be an object");
  Napi::Function on_batch = FunctionArgument(env, info[1], "onBatch");
  Napi::Function on_error = FunctionArgument(env, info[2], "onError");
  Napi::Object options = info[0].As<Napi::Object>();
  std::string where = AbsolutePathArgument(env, options.Get("where"), "options.where");
  std::string source = StringOption(env, options, "source");
  std::string kind = StringOption(env, options, "kind");
  if (kind != "direct" && kind != "indirect") {
    throw MakeArgumentError(env, "The \"options.kind\" property must be 'direct' or 'indirect'",
                            "ERR_INVALID_ARG_VALUE");
  }
  bool strict = options.Get("strictExpire").ToBoolean().Value();
  uint64_t timeout = static_cast<uint64_t>(
      IntegerArgument(env, options.Get("timeoutSec"), "options.timeoutSec", 0, INT32_MAX));

  struct stat st;
  if (lstat(where.c_str(), &st) != 0) throw SystemErrorWithPath(env, errno, "lstat", where);
  if (!S_ISDIR(st.st_mode)) throw SystemErrorWithPath(env, ENOTDIR, "lstat", where);

  int control = OpenAutofsControl();
  if (control < 0) throw SystemErrorWithPath(env, -control, "open", "/dev/autofs");
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    int err = errno;
    close(control);
    throw MakeSystemError(env, err, "pipe2");
  }
  std::string base = "fd=" + std::to_string(pipe_fds[1]) + ",pgrp=" + std::to_string(getpgrp()) +
                     ",minproto=5,maxproto=5," + kind;
  int rc = -1;
  int err = 0;
  if (strict) {
    rc = mount(source.c_str(), where.c_str(), "autofs", 0, (base + ",strictexpire").c_str());
    err = errno;
    // Kernels before 5.3 refuse the option they do not know: mount without it.
    if (rc != 0 && err == EINVAL) strict = false;
  }
  if (rc != 0 && !strict) {
    rc = mount(source.c_str(), where.c_str(), "autofs", 0, base.c_str());
    err = errno;
  }
  close(pipe_fds[1]);  // the kernel holds its own reference to the write end
  if (rc != 0) {
    close(pipe_fds[0]);
    close(control);
    throw SystemErrorWithPath(env, err, "mount", where);
  }

  const char* failed = nullptr;
  PendingAutofsMount pending;
  pending.pipe_fd = pipe_fds[0];
  pending.control_fd = control;
  pending.where = where;
  pending.strict_expire = strict;
  if (stat(where.c_str(), &st) != 0) {
    err = errno;
    failed = "stat";
  } else {
    pending.devid = st.st_dev;
    int ioctl_fd = OpenAutofsMount(control, where, st.st_dev);
    if (ioctl_fd < 0) {
      err = -ioctl_fd;
      failed = "AUTOFS_DEV_IOCTL_OPENMOUNT";
    } else {
      err = AutofsProtocol(control, ioctl_fd, &pending.proto_version, &pending.proto_sub_version);
      if (err != 0) {
        failed = "AUTOFS_DEV_IOCTL_PROTOVER";
      } else if (pending.proto_version < 5) {
        err = EPROTONOSUPPORT;
        failed = "AUTOFS_DEV_IOCTL_PROTOVER";
      } else {
        err = AutofsSetTimeout(control, ioctl_fd, timeout);
        if (err != 0) failed = "AUTOFS_DEV_IOCTL_TIMEOUT";
      }
      CloseAutofsMount(control, ioctl_fd);
    }
  }
  if (failed != nullptr) {
    umount2(where.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
    close(pipe_fds[0]);
    close(control);
    throw SystemErrorWithPath(env, err, failed, where);
  }
  try {
    return CreateHandle(env, &pending, on_batch, on_error);
  } catch (...) {
    // Create closed the fds; the mount must not stay behind without a daemon.
    umount2(where.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW);
    throw;
  }
}

// umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW): false when nothing was mounted there (EINVAL).
Napi::Value AutofsAddon::UnmountLazy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = AbsolutePathArgument(env, info[0], "path");
  if (umount2(path.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) != 0) {
    if (errno == EINVAL) return Napi::Boolean::New(env, false);
    throw SystemErrorWithPath(env, errno, "umount2", path);
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value AutofsAddon::ProcessGroup(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), getpgrp());
}

}  // namespace triggerd

using triggerd::AutofsAddon;
NODE_API_ADDON(AutofsAddon)
