// Socket addresses in C form: what listen() binds to and what getsockname()/accept4() report.
// Plain POSIX, no JavaScript; address_argument.cc converts from and to SocketAddress objects.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace triggerd {

struct SocketAddressSpec {
  struct sockaddr_storage storage = {};
  socklen_t length = 0;
  int family = AF_UNSPEC;
  int protocol = 0;       // AF_NETLINK: the netlink protocol; 0 otherwise
  std::string file_path;  // AF_UNIX path in the file system; empty for abstract names
  std::string display;    // for error messages: 127.0.0.1:80, [::1]:80, /run/x, @name, ...
};

enum class AddressProblem { kNone, kInvalid, kTooLong };

// "@name" (abstract: sun_path[0] NUL, exactly the name's bytes, no terminator) or an absolute
// path (NUL-terminated). kInvalid: neither, empty name or an embedded NUL; kTooLong: does not fit.
AddressProblem MakeUnixSpec(const std::string& path, SocketAddressSpec* out);
// `host` is a numeric address (inet_pton); kInvalid otherwise.
AddressProblem MakeInetSpec(const std::string& host, uint16_t port, SocketAddressSpec* out);
AddressProblem MakeInet6Spec(const std::string& host, uint16_t port, uint32_t scope_id,
                             SocketAddressSpec* out);
void MakeVsockSpec(uint32_t cid, uint32_t port, SocketAddressSpec* out);
// nl_groups is the group value as ListenNetlink= gives it (systemd binds it as the bitmask).
void MakeNetlinkSpec(int protocol, uint32_t groups, SocketAddressSpec* out);

}  // namespace triggerd
