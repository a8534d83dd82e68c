// Entry point of triggerd_notify.node: openNotifySocket() (the receiver) and the helpers that
// go with it: closeFd() for the fds it hands over, sendDatagram() and pipe() for tests.
#include "addon.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "../common/arguments.h"
#include "../netlink/system_error.h"
#include "notify_client.h"
#include "notify_fd.h"
#include "notify_socket.h"
#include "unix_address.h"

namespace triggerd {

namespace {

// Far above SCM_MAX_FD (253): the kernel, not this check, refuses what it does not take, so
// tests can see its EINVAL. This only keeps an absurd array from becoming a huge allocation.
constexpr size_t kMaxSendFds = 4096;

// The "path" argument: a string naming an absolute path or "@name" that fits sun_path.
UnixAddress AddressArgument(Napi::Env env, const Napi::Value& value, std::string* path) {
  if (!value.IsString()) {
    throw MakeArgumentError(env, "The \"path\" argument must be a string");
  }
  *path = value.As<Napi::String>().Utf8Value();
  UnixAddress address;
  switch (MakeUnixAddress(*path, &address)) {
    case UnixAddressProblem::kNone:
      return address;
    case UnixAddressProblem::kTooLong:
      throw SystemErrorWithPath(env, ENAMETOOLONG, "bind", *path);
    case UnixAddressProblem::kInvalid:
    default:
      throw MakeArgumentError(
          env, "The \"path\" argument must be an absolute path or @name without NUL bytes",
          "ERR_INVALID_ARG_VALUE");
  }
}

}  // namespace

NotifyAddon::NotifyAddon(Napi::Env env, Napi::Object exports) : PolledFdAddon(env) {
  DefineAddon(exports,
              {
                  InstanceMethod<&NotifyAddon::OpenNotifySocket>("openNotifySocket",
                                                                 napi_enumerable),
                  InstanceMethod<&NotifyAddon::SendDatagram>("sendDatagram", napi_enumerable),
                  InstanceMethod<&NotifyAddon::CloseFd>("closeFd", napi_enumerable),
                  InstanceMethod<&NotifyAddon::Pipe>("pipe", napi_enumerable),
              });
}

Napi::Value NotifyAddon::OpenNotifySocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  UnixAddress address = AddressArgument(env, info[0], &path);
  Napi::Function on_batch = FunctionArgument(env, info[1], "onBatch");
  Napi::Function on_error = FunctionArgument(env, info[2], "onError");

  NotifyFd opened;
  const char* failed_syscall = "socket";
  // A fourth argument, an fd: take over a socket carried across a re-exec instead of binding.
  int err = info.Length() > 3 && !info[3].IsUndefined()
                ? AdoptNotifyFd(static_cast<int>(IntegerArgument(env, info[3], "fd", 0, INT_MAX)),
                                address, &opened, &failed_syscall)
                : OpenNotifyFd(address, &opened, &failed_syscall);
  if (err != 0) throw SystemErrorWithPath(env, err, failed_syscall, path);
  return CreateHandle(env, &opened, on_batch, on_error);
}

Napi::Value NotifyAddon::SendDatagram(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path;
  UnixAddress address = AddressArgument(env, info[0], &path);
  if (!info[1].IsBuffer()) {
    throw MakeArgumentError(env, "The \"buffer\" argument must be a Buffer or Uint8Array");
  }
  Napi::Buffer<uint8_t> buffer = info[1].As<Napi::Buffer<uint8_t>>();
  std::vector<int> fds;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsArray()) {
      throw MakeArgumentError(env, "The \"fds\" argument must be an array of fds");
    }
    Napi::Array array = info[2].As<Napi::Array>();
    if (array.Length() > kMaxSendFds) {
      throw MakeArgumentError(env, "The \"fds\" argument has too many entries",
                              "ERR_INVALID_ARG_VALUE");
    }
    fds.reserve(array.Length());
    for (uint32_t i = 0; i < array.Length(); i++) {
      fds.push_back(static_cast<int>(IntegerArgument(env, array.Get(i), "fds[]", 0, INT_MAX)));
    }
  }

  size_t sent = 0;
  const char* failed_syscall = "sendmsg";
  int err = SendNotifyDatagram(address, buffer.Data(), buffer.Length(), fds, &sent,
                               &failed_syscall);
  if (err != 0) throw SystemErrorWithPath(env, err, failed_syscall, path);
  return Napi::Number::New(env, static_cast<double>(sent));
}

Napi::Value NotifyAddon::CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntegerArgument(env, info[0], "fd", 0, INT_MAX));
  batch_fds_.erase(fd);
  // On Linux the fd is gone even when close() says EINTR; retrying could close a reused number.
  if (close(fd) != 0 && errno != EINTR) throw MakeSystemError(env, errno, "close");
  return env.Undefined();
}

Napi::Value NotifyAddon::Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ends[2];
  if (pipe2(ends, O_CLOEXEC) != 0) throw MakeSystemError(env, errno, "pipe2");
  Napi::Array result;
  try {
    result = Napi::Array::New(env, 2);
    result.Set(0u, Napi::Number::New(env, ends[0]));
    result.Set(1u, Napi::Number::New(env, ends[1]));
  } catch (...) {
    close(ends[0]);
    close(ends[1]);
    throw;
  }
  return result;
}

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::NotifyAddon;
NODE_API_ADDON(NotifyAddon)
