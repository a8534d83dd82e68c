// SO_PEERCRED of a connected unix socket, for authorizing control requests.
#pragma once

#include <napi.h>

namespace triggerd {

// peerCredentials(fd) → {pid, uid, gid}; system error with syscall 'getsockopt' on failure.
Napi::Value PeerCredentialsOf(const Napi::CallbackInfo& info);

}  // namespace triggerd
