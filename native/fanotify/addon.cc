// Entry point of triggerd_fanotify.node: openFanotify(), a fanotify group watched on the
// environment's loop. Flags and masks are the kernel's numbers, passed through (TypeScript names
// them in src/native/fanotify-addon.ts); the records are parsed in TypeScript.
#include "addon.h"

#include <fcntl.h>
#include <sys/fanotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "../common/arguments.h"
#include "../netlink/system_error.h"
#include "fanotify_handle.h"

namespace triggerd {

Napi::Error FanotifyError(Napi::Env env, int err, const char* syscall) {
  Napi::Error error = MakeSystemError(env, err, syscall);
  // libuv has no name for a few errnos this addon meets (ESTALE from open_by_handle_at): use
  // glibc's, so `code` is still the errno's name.
  std::string code = error.Get("code").ToString().Utf8Value();
  if (code.rfind("Unknown", 0) == 0) {
    const char* name = strerrorname_np(err);
    if (name != nullptr) {
      error.Set("code", Napi::String::New(env, name));
      error.Set("message",
                Napi::String::New(env, std::string(name) + ": " + strerror(err) + ", " + syscall));
    }
  }
  return error;
}

Napi::Error FanotifyErrorWithPath(Napi::Env env, int err, const char* syscall,
                                  const std::string& path) {
  return AddPath(env, FanotifyError(env, err, syscall), path);
}

FanotifyAddon::FanotifyAddon(Napi::Env env, Napi::Object exports) : PolledFdAddon(env) {
  DefineAddon(exports, {
                           InstanceMethod<&FanotifyAddon::OpenFanotify>("openFanotify",
                                                                        napi_enumerable),
                       });
}

// openFanotify(initFlags, eventFlags, onBatch, onError)
Napi::Value FanotifyAddon::OpenFanotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t flags = static_cast<uint32_t>(IntegerArgument(env, info[0], "flags", 0, UINT32_MAX));
  uint32_t event_flags =
      static_cast<uint32_t>(IntegerArgument(env, info[1], "eventFlags", 0, UINT32_MAX));
  Napi::Function on_batch = FunctionArgument(env, info[2], "onBatch");
  Napi::Function on_error = FunctionArgument(env, info[3], "onError");
  // Always non-blocking (uv_poll drains to EAGAIN) and close-on-exec, the group fd and the event
  // fds alike: neither may leak into a job.
  int fd = fanotify_init(flags | FAN_CLOEXEC | FAN_NONBLOCK, event_flags | O_CLOEXEC);
  if (fd < 0) throw FanotifyError(env, errno, "fanotify_init");
  return CreateHandle(env, &fd, on_batch, on_error);
}

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::FanotifyAddon;
NODE_API_ADDON(FanotifyAddon)
