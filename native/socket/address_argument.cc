#include "address_argument.h"

#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>
#include <string>

#include "../netlink/system_error.h"

namespace triggerd {

namespace {

std::string StringField(Napi::Env env, const Napi::Object& object, const char* name) {
  Napi::Value value = object.Get(name);
  if (!value.IsString()) {
    throw MakeArgumentError(env, std::string("The \"address.") + name + "\" property must be a string");
  }
  return value.As<Napi::String>().Utf8Value();
}

int64_t IntegerField(Napi::Env env, const Napi::Object& object, const char* name, int64_t min,
                     int64_t max) {
  std::string label = std::string("address.") + name;
  return IntegerArgument(env, object.Get(name), label.c_str(), min, max);
}

Napi::Error Invalid(Napi::Env env, const std::string& message) {
  return MakeArgumentError(env, message, "ERR_INVALID_ARG_VALUE");
}

}  // namespace

SocketAddressSpec AddressArgument(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject() || value.IsArray() || value.IsFunction()) {
    throw MakeArgumentError(env, "The \"address\" argument must be a SocketAddress object");
  }
  Napi::Object object = value.As<Napi::Object>();
  std::string family = StringField(env, object, "family");
  SocketAddressSpec spec;
  if (family == "inet" || family == "inet6") {
    std::string host = StringField(env, object, "host");
    auto port = static_cast<uint16_t>(IntegerField(env, object, "port", 0, 65535));
    AddressProblem problem;
    if (family == "inet") {
      problem = MakeInetSpec(host, port, &spec);
    } else {
      uint32_t scope = 0;
      if (!object.Get("scopeId").IsUndefined()) {
        scope = static_cast<uint32_t>(IntegerField(env, object, "scopeId", 0, UINT32_MAX));
      }
      problem = MakeInet6Spec(host, port, scope, &spec);
    }
    if (problem != AddressProblem::kNone) {
      throw Invalid(env, "The \"address.host\" property must be a numeric " +
                             std::string(family == "inet" ? "IPv4" : "IPv6") + " address, got '" +
                             host + "'");
    }
  } else if (family == "unix") {
    std::string path = StringField(env, object, "path");
    switch (MakeUnixSpec(path, &spec)) {
      case AddressProblem::kNone:
        break;
      case AddressProblem::kTooLong:
        throw Invalid(env, "The \"address.path\" property is too long for sun_path (107 bytes)");
      case AddressProblem::kInvalid:
      default:
        throw Invalid(env,
                      "The \"address.path\" property must be an absolute path or @name without "
                      "NUL bytes");
    }
  } else if (family == "vsock") {
    auto cid = static_cast<uint32_t>(IntegerField(env, object, "cid", 0, UINT32_MAX));
    auto port = static_cast<uint32_t>(IntegerField(env, object, "port", 0, UINT32_MAX));
    MakeVsockSpec(cid, port, &spec);
  } else if (family == "netlink") {
    // MAX_LINKS is 32: protocols are 0..31.
    auto protocol = static_cast<int>(IntegerField(env, object, "protocol", 0, 31));
    auto group = static_cast<uint32_t>(IntegerField(env, object, "group", 0, UINT32_MAX));
    MakeNetlinkSpec(protocol, group, &spec);
  } else {
    throw Invalid(env, "The \"address.family\" property must be one of inet, inet6, unix, vsock, "
                       "netlink, got '" + family + "'");
  }
  return spec;
}

Napi::Object AddressToObject(Napi::Env env, const struct sockaddr_storage& address,
                             socklen_t length, int fd, const char* syscall) {
  Napi::Object out = Napi::Object::New(env);
  const auto* sa = reinterpret_cast<const struct sockaddr*>(&address);
  const size_t have = static_cast<size_t>(length);
  if (have < sizeof(sa_family_t)) throw MakeSystemError(env, EAFNOSUPPORT, syscall);
  char text[INET6_ADDRSTRLEN] = {};
  switch (sa->sa_family) {
    case AF_INET: {
      if (have < sizeof(struct sockaddr_in)) break;
      const auto* in = reinterpret_cast<const struct sockaddr_in*>(&address);
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
      out.Set("family", "inet");
      out.Set("host", text);
      out.Set("port", Napi::Number::New(env, ntohs(in->sin_port)));
      return out;
    }
    case AF_INET6: {
      if (have < sizeof(struct sockaddr_in6)) break;
      const auto* in6 = reinterpret_cast<const struct sockaddr_in6*>(&address);
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
      out.Set("family", "inet6");
      out.Set("host", text);
      out.Set("port", Napi::Number::New(env, ntohs(in6->sin6_port)));
      if (in6->sin6_scope_id != 0) {
        out.Set("scopeId", Napi::Number::New(env, in6->sin6_scope_id));
      }
      return out;
    }
    case AF_UNIX: {
      const auto* un = reinterpret_cast<const struct sockaddr_un*>(&address);
      const size_t offset = offsetof(struct sockaddr_un, sun_path);
      size_t bytes = have > offset ? have - offset : 0;
      if (bytes > sizeof(un->sun_path)) bytes = sizeof(un->sun_path);
      std::string path;
      if (bytes > 0 && un->sun_path[0] == '\0') {
        path = "@" + std::string(un->sun_path + 1, bytes - 1);  // abstract: the length says
      } else {
        path = std::string(un->sun_path, strnlen(un->sun_path, bytes));
      }
      out.Set("family", "unix");
      out.Set("path", path);
      return out;
    }
    case AF_VSOCK: {
      if (have < sizeof(struct sockaddr_vm)) break;
      const auto* vm = reinterpret_cast<const struct sockaddr_vm*>(&address);
      out.Set("family", "vsock");
      out.Set("cid", Napi::Number::New(env, vm->svm_cid));
      out.Set("port", Napi::Number::New(env, vm->svm_port));
      return out;
    }
    case AF_NETLINK: {
      if (have < sizeof(struct sockaddr_nl)) break;
      const auto* nl = reinterpret_cast<const struct sockaddr_nl*>(&address);
      int protocol = -1;
      socklen_t protocol_length = sizeof(protocol);
      if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &protocol_length) != 0) protocol = -1;
      out.Set("family", "netlink");
      out.Set("protocol", Napi::Number::New(env, protocol));
      out.Set("group", Napi::Number::New(env, nl->nl_groups));
      out.Set("portId", Napi::Number::New(env, nl->nl_pid));
      return out;
    }
    default:
      break;
  }
  // A family SocketAddress has no form for (AF_PACKET, ...), or a truncated address.
  throw MakeSystemError(env, EAFNOSUPPORT, syscall);
}

}  // namespace triggerd
