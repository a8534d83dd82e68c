#include "socket_address.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>

namespace triggerd {

AddressProblem MakeUnixSpec(const std::string& path, SocketAddressSpec* out) {
  *out = SocketAddressSpec();
  out->family = AF_UNIX;
  auto* un = reinterpret_cast<struct sockaddr_un*>(&out->storage);
  un->sun_family = AF_UNIX;
  if (path.size() < 2 || path.find('\0') != std::string::npos) return AddressProblem::kInvalid;
  const size_t capacity = sizeof(un->sun_path);
  if (path[0] == '@') {
    const size_t name_length = path.size() - 1;
    if (name_length > capacity - 1) return AddressProblem::kTooLong;
    std::memcpy(un->sun_path + 1, path.data() + 1, name_length);
    out->length = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + 1 + name_length);
  } else {
    if (path[0] != '/') return AddressProblem::kInvalid;
    if (path.size() > capacity - 1) return AddressProblem::kTooLong;  // room for the NUL
    std::memcpy(un->sun_path, path.data(), path.size());
    out->length = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size() + 1);
    out->file_path = path;
  }
  out->display = path;
  return AddressProblem::kNone;
}

AddressProblem MakeInetSpec(const std::string& host, uint16_t port, SocketAddressSpec* out) {
  *out = SocketAddressSpec();
  out->family = AF_INET;
  auto* in = reinterpret_cast<struct sockaddr_in*>(&out->storage);
  in->sin_family = AF_INET;
  in->sin_port = htons(port);
  if (host.find('\0') != std::string::npos || inet_pton(AF_INET, host.c_str(), &in->sin_addr) != 1) {
    return AddressProblem::kInvalid;
  }
  out->length = sizeof(struct sockaddr_in);
  out->display = host + ":" + std::to_string(port);
  return AddressProblem::kNone;
}

AddressProblem MakeInet6Spec(const std::string& host, uint16_t port, uint32_t scope_id,
                             SocketAddressSpec* out) {
  *out = SocketAddressSpec();
  out->family = AF_INET6;
  auto* in6 = reinterpret_cast<struct sockaddr_in6*>(&out->storage);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  in6->sin6_scope_id = scope_id;
  if (host.find('\0') != std::string::npos ||
      inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) != 1) {
    return AddressProblem::kInvalid;
  }
  out->length = sizeof(struct sockaddr_in6);
  out->display = "[" + host + "]:" + std::to_string(port);
  return AddressProblem::kNone;
}

void MakeVsockSpec(uint32_t cid, uint32_t port, SocketAddressSpec* out) {
  *out = SocketAddressSpec();
  out->family = AF_VSOCK;
  auto* vm = reinterpret_cast<struct sockaddr_vm*>(&out->storage);
  vm->svm_family = AF_VSOCK;
  vm->svm_cid = cid;
  vm->svm_port = port;
  out->length = sizeof(struct sockaddr_vm);
  out->display = "vsock:" + std::to_string(cid) + ":" + std::to_string(port);
}

void MakeNetlinkSpec(int protocol, uint32_t groups, SocketAddressSpec* out) {
  *out = SocketAddressSpec();
  out->family = AF_NETLINK;
  out->protocol = protocol;
  auto* nl = reinterpret_cast<struct sockaddr_nl*>(&out->storage);
  nl->nl_family = AF_NETLINK;
  nl->nl_pid = 0;  // the kernel assigns the port id
  nl->nl_groups = groups;
  out->length = sizeof(struct sockaddr_nl);
  out->display = "netlink:" + std::to_string(protocol) + ":" + std::to_string(groups);
}

}  // namespace triggerd
