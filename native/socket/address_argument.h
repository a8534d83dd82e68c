// SocketAddress objects (src/native/socket-addon.ts) to and from C socket addresses. Throws a
// TypeError (ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE) for anything malformed.
#pragma once

#include <napi.h>
#include <sys/socket.h>

#include "socket_address.h"

namespace triggerd {

// The "address" argument of listen().
SocketAddressSpec AddressArgument(Napi::Env env, const Napi::Value& value);

// A SocketAddress for what getsockname()/accept4() reported. `fd` is asked for SO_PROTOCOL when
// the address is a netlink one. Unix: "@name" for abstract names, "" for an unnamed socket.
// IPv4-mapped IPv6 addresses stay inet6 with inet_ntop's text ("::ffff:127.0.0.1").
// Netlink: {protocol (SO_PROTOCOL), group (nl_groups), portId (nl_pid)}.
// Another family (or a truncated address) throws EAFNOSUPPORT naming `syscall`.
Napi::Object AddressToObject(Napi::Env env, const struct sockaddr_storage& address,
                             socklen_t length, int fd, const char* syscall);

}  // namespace triggerd
