// Entry point of triggerd_mounts.node: watchMountInfo(), a POLLPRI watch on /proc/self/mountinfo
// (or another proc mounts file) on the environment's loop. TypeScript reads and parses the table
// (src/mounts/mountinfo.ts); this side only says "it changed".
#include "addon.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "../common/arguments.h"
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
  Napi::Function on_change = FunctionArgument(env, info[0], "onChange");
  Napi::Function on_error = FunctionArgument(env, info[1], "onError");
  std::string path = "/proc/self/mountinfo";
  if (info.Length() >= 3 && !info[2].IsUndefined()) path = PathArgument(env, info[2]);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    Napi::Error error = MakeSystemError(env, errno, "open");
    error.Set("path", Napi::String::New(env, path));
    throw error;
  }
  return CreateHandle(env, &fd, on_change, on_error);
}

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::MountsAddon;
NODE_API_ADDON(MountsAddon)
