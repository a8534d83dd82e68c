// Entry point of triggerd_native.node: openUeventSocket() and peerCredentials().
#include "addon.h"

#include <malloc.h>
#include <v8.h>

#include <climits>
#include <cstdint>

#include "../common/arguments.h"
#include "peer_credentials.h"
#include "system_error.h"
#include "uevent_fd.h"
#include "uevent_socket.h"

namespace triggerd {

NetlinkAddon::NetlinkAddon(Napi::Env env, Napi::Object exports) : PolledFdAddon(env) {
  DefineAddon(exports,
              {
                  InstanceMethod<&NetlinkAddon::OpenUeventSocket>("openUeventSocket",
                                                                  napi_enumerable),
                  InstanceMethod<&NetlinkAddon::PeerCredentials>("peerCredentials",
                                                                 napi_enumerable),
                  InstanceMethod<&NetlinkAddon::ReleaseMemory>("releaseMemory",
                                                               napi_enumerable),
              });
}

Napi::Value NetlinkAddon::OpenUeventSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject() || info[0].IsFunction()) {
    throw MakeArgumentError(env, "The \"options\" argument must be an object");
  }
  Napi::Object options = info[0].As<Napi::Object>();
  uint32_t groups = static_cast<uint32_t>(
      IntegerArgument(env, options.Get("groups"), "options.groups", 0, UINT32_MAX));
  int receive_buffer_bytes = static_cast<int>(IntegerArgument(
      env, options.Get("receiveBufferBytes"), "options.receiveBufferBytes", 1, INT_MAX));
  Napi::Function on_batch = FunctionArgument(env, info[1], "onBatch");
  Napi::Function on_error = FunctionArgument(env, info[2], "onError");

  UeventFd opened;
  const char* failed_syscall = "socket";
  // options.fd: take over a socket carried across a re-exec instead of opening one.
  Napi::Value adopt = options.Get("fd");
  int err = adopt.IsUndefined()
                ? OpenUeventFd(groups, receive_buffer_bytes, &opened, &failed_syscall)
                : AdoptUeventFd(static_cast<int>(IntegerArgument(env, adopt, "options.fd", 0, INT_MAX)),
                                groups, &opened, &failed_syscall);
  if (err != 0) throw MakeSystemError(env, err, failed_syscall);
  return CreateHandle(env, &opened, on_batch, on_error);
}

// V8 keeps the heap pages a burst of allocation grew (start-up, a coldplug through the rules)
// and gives them back only under memory pressure. A daemon that goes idle after such a burst
// asks for that once: full GCs with compaction, then the freed pages are returned to the OS.
Napi::Value NetlinkAddon::ReleaseMemory(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
#ifdef __GLIBC__
  // The same for the C heap: parsing rules, units and sysfs at start-up leaves free chunks that
  // glibc keeps; malloc_trim returns the whole free pages among them (every arena).
  malloc_trim(0);
#endif
  return info.Env().Undefined();
}

Napi::Value NetlinkAddon::PeerCredentials(const Napi::CallbackInfo& info) {
  return PeerCredentialsOf(info);
}

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::NetlinkAddon;
NODE_API_ADDON(NetlinkAddon)
