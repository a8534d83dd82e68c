// Entry point of triggerd_mounts.node: watchMountInfo(), a POLLPRI watch on /proc/self/mountinfo
// (or another proc mounts file) on the environment's loop. TypeScript reads and parses the table
// (src/mounts/mountinfo.ts); this side only says "it changed".
#include "addon.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "../netlink/system_error.h"
#include "mountinfo_watch.h"

namespace triggerd {

MountsAddon::MountsAddon(Napi::Env env, Napi::Object exports) : PolledFdAddon(env) {
  DefineAddon(exports, {
                           InstanceMethod<&MountsAddon::WatchMountInfo>("watchMountInfo",
                                                                        napi_enumerable),
                       });
}

// watchMountInfo(onChange, onError, path = '/proc/self/mountinfo')
Napi::Value MountsAddon::WatchMountInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) {
    throw MakeArgumentError(env, "The \"onChange\" argument must be a function");
  }
  if (!info[1].IsFunction()) {
    throw MakeArgumentError(env, "The \"onError\" argument must be a function");
  }
  std::string path = "/proc/self/mountinfo";
  if (info.Length() >= 3 && !info[2].IsUndefined()) {
    if (!info[2].IsString()) throw MakeArgumentError(env, "The \"path\" argument must be a string");
    path = info[2].As<Napi::String>().Utf8Value();
    if (path.empty() || path.find('\0') != std::string::npos) {
      throw MakeArgumentError(env,
                              "The \"path\" argument must be a non-empty path without NUL bytes",
                              "ERR_INVALID_ARG_VALUE");
    }
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    Napi::Error error = MakeSystemError(env, errno, "open");
    error.Set("path", Napi::String::New(env, path));
    throw error;
  }
  return CreateHandle(env, &fd, info[0].As<Napi::Function>(), info[1].As<Napi::Function>());
}

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::MountsAddon;
NODE_API_ADDON(MountsAddon)
