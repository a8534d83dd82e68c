// Entry point of triggerd_socket.node: the fds of .socket units (listen, openFifo, openSpecial,
// openMessageQueue), accept, localAddress, close, and watch (readiness on the environment's
// loop). Argument checks and error shapes live here; the POSIX work in open_fd.cc.
#include "addon.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <mqueue.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <optional>
#include <string>
#include <vector>

#include "../netlink/system_error.h"
#include "accept_spawn.h"
#include "address_argument.h"
#include "open_fd.h"
#include "readiness_watch.h"

namespace triggerd {

namespace {

constexpr int64_t kMaxFd = INT_MAX;

int FdArgument(Napi::Env env, const Napi::Value& value) {
  return static_cast<int>(IntegerArgument(env, value, "fd", 0, kMaxFd));
}

// An absolute path without NUL bytes (FIFOs and special files).
std::string PathArgument(Napi::Env env, const Napi::Value& value) {
  if (!value.IsString()) throw MakeArgumentError(env, "The \"path\" argument must be a string");
  std::string path = value.As<Napi::String>().Utf8Value();
  if (path.size() < 2 || path[0] != '/' || path.find('\0') != std::string::npos) {
    throw MakeArgumentError(env, "The \"path\" argument must be an absolute path without NUL bytes",
                            "ERR_INVALID_ARG_VALUE");
  }
  return path;
}

// A Failure as a Node-style error: code/errno/syscall, plus `path` for file steps, `option`
// (the SocketOptions key) for setsockopt, and `address`/`port` for inet binds as Node's net does.
Napi::Error FailureError(Napi::Env env, const Failure& failure, const SocketAddressSpec* address) {
  Napi::Error error = MakeSystemError(env, failure.err, failure.syscall);
  std::string message = error.Get("message").ToString().Utf8Value();
  if (failure.option != nullptr) {
    error.Set("option", Napi::String::New(env, failure.option));
    message += " (" + std::string(failure.option) + ")";
  }
  if (!failure.path.empty()) {
    error.Set("path", Napi::String::New(env, failure.path));
    message += " '" + failure.path + "'";
  } else if (address != nullptr && !address->display.empty()) {
    message += " " + address->display;
    if (address->family == AF_UNIX) {
      error.Set("path", Napi::String::New(env, address->display));
    } else if (address->family == AF_INET || address->family == AF_INET6) {
      const auto* in = reinterpret_cast<const struct sockaddr_in*>(&address->storage);
      const auto* in6 = reinterpret_cast<const struct sockaddr_in6*>(&address->storage);
      char text[INET6_ADDRSTRLEN] = {};
      if (address->family == AF_INET) {
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
        error.Set("port", Napi::Number::New(env, ntohs(in->sin_port)));
      } else {
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
        error.Set("port", Napi::Number::New(env, ntohs(in6->sin6_port)));
      }
      error.Set("address", Napi::String::New(env, text));
    }
  }
  error.Set("message", Napi::String::New(env, message));
  return error;
}

// mq_overview(7): "/name", no other slash, at most NAME_MAX bytes after the slash.
std::string QueueNameArgument(Napi::Env env, const Napi::Value& value) {
  if (!value.IsString()) throw MakeArgumentError(env, "The \"name\" argument must be a string");
  std::string name = value.As<Napi::String>().Utf8Value();
  if (name.size() < 2 || name.size() > 1 + NAME_MAX || name[0] != '/' ||
      name.find('/', 1) != std::string::npos || name.find('\0') != std::string::npos) {
    throw MakeArgumentError(env,
                            "The \"name\" argument must be /name (no other slash, no NUL, at most "
                            "255 bytes after the slash)",
                            "ERR_INVALID_ARG_VALUE");
  }
  return name;
}

int SocketType(Napi::Env env, const Napi::Value& value) {
  if (!value.IsString()) {
    throw MakeArgumentError(env, "The \"kind\" argument must be 'stream', 'dgram' or 'seqpacket'");
  }
  std::string kind = value.As<Napi::String>().Utf8Value();
  if (kind == "stream") return SOCK_STREAM;
  if (kind == "dgram") return SOCK_DGRAM;
  if (kind == "seqpacket") return SOCK_SEQPACKET;
  throw MakeArgumentError(
      env, "The \"kind\" argument must be 'stream', 'dgram' or 'seqpacket', got '" + kind + "'",
      "ERR_INVALID_ARG_VALUE");
}

class OptionReader {
 public:
  OptionReader(Napi::Env env, const Napi::Object& object) : env_(env), object_(object) {}

  bool Bool(const char* name, bool fallback) {
    Napi::Value value = object_.Get(name);
    if (value.IsUndefined()) return fallback;
    if (!value.IsBoolean()) {
      throw MakeArgumentError(env_, std::string("The \"options.") + name +
                                        "\" property must be a boolean");
    }
    return value.As<Napi::Boolean>().Value();
  }

  std::optional<int64_t> Integer(const char* name, int64_t min, int64_t max) {
    Napi::Value value = object_.Get(name);
    if (value.IsUndefined()) return std::nullopt;
    std::string label = std::string("options.") + name;
    return IntegerArgument(env_, value, label.c_str(), min, max);
  }

  Napi::Value Get(const char* name) { return object_.Get(name); }

 private:
  Napi::Env env_;
  Napi::Object object_;
};

// The "options" argument: a SocketOptions object (undefined means {}). Unknown keys are ignored.
OpenOptions OptionsArgument(Napi::Env env, const Napi::Value& value) {
  OpenOptions o;
  if (value.IsUndefined()) return o;
  if (!value.IsObject() || value.IsArray() || value.IsFunction()) {
    throw MakeArgumentError(env, "The \"options\" argument must be a SocketOptions object");
  }
  OptionReader read(env, value.As<Napi::Object>());
  if (auto v = read.Integer("backlog", 0, INT_MAX)) o.backlog = static_cast<int>(*v);
  Napi::Value only = read.Get("bindIPv6Only");
  if (!only.IsUndefined()) {
    std::string text = only.IsString() ? only.As<Napi::String>().Utf8Value() : "";
    if (text == "default") {
      o.bind_ipv6_only = BindIPv6Only::kDefault;
    } else if (text == "both") {
      o.bind_ipv6_only = BindIPv6Only::kBoth;
    } else if (text == "ipv6-only") {
      o.bind_ipv6_only = BindIPv6Only::kIpv6Only;
    } else {
      throw MakeArgumentError(
          env, "The \"options.bindIPv6Only\" property must be 'default', 'both' or 'ipv6-only'",
          only.IsString() ? "ERR_INVALID_ARG_VALUE" : "ERR_INVALID_ARG_TYPE");
    }
  }
  Napi::Value device = read.Get("bindToDevice");
  if (!device.IsUndefined()) {
    if (!device.IsString()) {
      throw MakeArgumentError(env, "The \"options.bindToDevice\" property must be a string");
    }
    o.bind_to_device = device.As<Napi::String>().Utf8Value();
    if (o.bind_to_device.empty() || o.bind_to_device.size() >= IFNAMSIZ ||
        o.bind_to_device.find('\0') != std::string::npos) {
      throw MakeArgumentError(env,
                              "The \"options.bindToDevice\" property must be an interface name "
                              "of 1 to 15 bytes",
                              "ERR_INVALID_ARG_VALUE");
    }
  }
  o.free_bind = read.Bool("freeBind", false);
  o.transparent = read.Bool("transparent", false);
  o.reuse_port = read.Bool("reusePort", false);
  o.keep_alive = read.Bool("keepAlive", false);
  if (auto v = read.Integer("keepAliveTimeSec", 0, INT_MAX)) o.keep_alive_time = *v;
  if (auto v = read.Integer("keepAliveIntervalSec", 0, INT_MAX)) o.keep_alive_interval = *v;
  if (auto v = read.Integer("keepAliveProbes", 0, INT_MAX)) o.keep_alive_probes = *v;
  o.no_delay = read.Bool("noDelay", false);
  if (auto v = read.Integer("deferAcceptSec", 0, INT_MAX)) o.defer_accept = *v;
  if (auto v = read.Integer("priority", 0, INT_MAX)) o.priority = *v;
  if (auto v = read.Integer("receiveBuffer", 0, INT_MAX)) o.receive_buffer = *v;
  if (auto v = read.Integer("sendBuffer", 0, INT_MAX)) o.send_buffer = *v;
  if (auto v = read.Integer("ipTos", 0, 255)) o.ip_tos = *v;
  if (auto v = read.Integer("ipTtl", 0, 255)) o.ip_ttl = *v;
  if (auto v = read.Integer("mark", 0, UINT32_MAX)) o.mark = static_cast<uint32_t>(*v);
  o.pass_credentials = read.Bool("passCredentials", false);
  o.pass_security = read.Bool("passSecurity", false);
  o.broadcast = read.Bool("broadcast", false);
  if (auto v = read.Integer("socketMode", 0, 07777)) o.socket_mode = static_cast<mode_t>(*v);
  if (auto v = read.Integer("directoryMode", 0, 07777)) o.directory_mode = static_cast<mode_t>(*v);
  // (uid_t)-1 means "leave as is" to chown, so it is not a valid value here.
  if (auto v = read.Integer("uid", 0, UINT32_MAX - 1)) o.uid = static_cast<uid_t>(*v);
  if (auto v = read.Integer("gid", 0, UINT32_MAX - 1)) o.gid = static_cast<gid_t>(*v);
  return o;
}

// Closes a fd unless released: nothing between accept4() and handing the fd to JavaScript leaks.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

}  // namespace

SocketAddon::SocketAddon(Napi::Env env, Napi::Object exports) {
  watch_class_ = Napi::Persistent(ReadinessWatch::DefineClass(env));
  DefineAddon(exports,
              {
                  InstanceMethod<&SocketAddon::Listen>("listen", napi_enumerable),
                  InstanceMethod<&SocketAddon::OpenFifo>("openFifo", napi_enumerable),
                  InstanceMethod<&SocketAddon::OpenSpecial>("openSpecial", napi_enumerable),
                  InstanceMethod<&SocketAddon::OpenMessageQueue>("openMessageQueue",
                                                                 napi_enumerable),
                  InstanceMethod<&SocketAddon::Accept>("accept", napi_enumerable),
                  InstanceMethod<&SocketAddon::LocalAddress>("localAddress", napi_enumerable),
                  InstanceMethod<&SocketAddon::Watch>("watch", napi_enumerable),
                  InstanceMethod<&SocketAddon::Close>("close", napi_enumerable),
                  InstanceMethod<&SocketAddon::UnlinkMessageQueue>("unlinkMessageQueue",
                                                                   napi_enumerable),
                  // For tests: read back what listen() set, option by option.
                  InstanceMethod<&SocketAddon::GetSockOptInt>("getsockoptInt", napi_enumerable),
                  InstanceMethod<&SocketAddon::AcceptSpawn>("acceptSpawn", napi_enumerable),
              });
  env_ = env;
}

SocketAddon::~SocketAddon() { CloseAcceptSpawners(env_); }

Napi::Value SocketAddon::AcceptSpawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArgument(env, info[0]);
  // libuv and the spawner's thread must not both take connections off one socket.
  if (registry_->by_fd.count(fd) != 0) throw MakeSystemError(env, EEXIST, "acceptSpawn");
  return StartAcceptSpawn(info);
}

Napi::Value SocketAddon::Listen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int type = SocketType(env, info[0]);
  SocketAddressSpec address = AddressArgument(env, info[1]);
  OpenOptions options = OptionsArgument(env, info[2]);
  Napi::Array warnings_array;
  bool collect = false;
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    if (!info[3].IsArray()) {
      throw MakeArgumentError(env, "The \"warnings\" argument must be an array");
    }
    warnings_array = info[3].As<Napi::Array>();
    collect = true;
  }

  std::vector<Failure> warnings;
  Failure failure;
  int fd = OpenListeningSocket(type, address, options, collect ? &warnings : nullptr, &failure);
  if (fd < 0) throw FailureError(env, failure, &address);
  FdGuard guard(fd);
  for (const Failure& warning : warnings) {
    warnings_array.Set(warnings_array.Length(), FailureError(env, warning, &address).Value());
  }
  return Napi::Number::New(env, guard.Release());
}

Napi::Value SocketAddon::OpenFifo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = PathArgument(env, info[0]);
  OpenOptions options = OptionsArgument(env, info[1]);
  Failure failure;
  int fd = triggerd::OpenFifo(path, options, &failure);
  if (fd < 0) throw FailureError(env, failure, nullptr);
  return Napi::Number::New(env, fd);
}

Napi::Value SocketAddon::OpenSpecial(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = PathArgument(env, info[0]);
  Failure failure;
  int fd = triggerd::OpenSpecial(path, &failure);
  if (fd < 0) throw FailureError(env, failure, nullptr);
  return Napi::Number::New(env, fd);
}

Napi::Value SocketAddon::OpenMessageQueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = QueueNameArgument(env, info[0]);
  auto mode = static_cast<mode_t>(IntegerArgument(env, info[1], "mode", 0, 07777));
  long max_messages = 0;
  long message_size = 0;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    max_messages = static_cast<long>(IntegerArgument(env, info[2], "maxMessages", 0, INT_MAX));
  }
  if (info.Length() > 3 && !info[3].IsUndefined()) {
    message_size = static_cast<long>(IntegerArgument(env, info[3], "messageSize", 0, INT_MAX));
  }
  Failure failure;
  int fd = triggerd::OpenMessageQueue(name, mode, max_messages, message_size, &failure);
  if (fd < 0) throw FailureError(env, failure, nullptr);
  return Napi::Number::New(env, fd);
}

Napi::Value SocketAddon::UnlinkMessageQueue(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = QueueNameArgument(env, info[0]);
  if (mq_unlink(name.c_str()) != 0) {
    Failure failure;
    failure.err = errno;
    failure.syscall = "mq_unlink";
    failure.path = name;
    throw FailureError(env, failure, nullptr);
  }
  return env.Undefined();
}

Napi::Value SocketAddon::Accept(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArgument(env, info[0]);
  struct sockaddr_storage remote = {};
  socklen_t remote_length = sizeof(remote);
  int connection;
  do {
    // No SOCK_NONBLOCK: the connection becomes a service's blocking stdin/stdout.
    connection = accept4(fd, reinterpret_cast<struct sockaddr*>(&remote), &remote_length,
                         SOCK_CLOEXEC);
  } while (connection < 0 && errno == EINTR);
  if (connection < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return env.Undefined();
    throw MakeSystemError(env, errno, "accept4");
  }
  FdGuard guard(connection);

  // Linux does not pass O_NONBLOCK on through accept4, but make it certain.
  int flags = fcntl(connection, F_GETFL);
  if (flags < 0) throw MakeSystemError(env, errno, "fcntl");
  if ((flags & O_NONBLOCK) != 0 && fcntl(connection, F_SETFL, flags & ~O_NONBLOCK) != 0) {
    throw MakeSystemError(env, errno, "fcntl");
  }

  struct sockaddr_storage local = {};
  socklen_t local_length = sizeof(local);
  if (getsockname(connection, reinterpret_cast<struct sockaddr*>(&local), &local_length) != 0) {
    throw MakeSystemError(env, errno, "getsockname");
  }
  double peer_pid = -1;
  double peer_uid = -1;
  double peer_gid = -1;
  if (local.ss_family == AF_UNIX) {
    struct ucred cred = {};
    socklen_t cred_length = sizeof(cred);
    if (getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &cred, &cred_length) == 0 &&
        cred_length == sizeof(cred)) {
      peer_pid = cred.pid;
      peer_uid = cred.uid;
      peer_gid = cred.gid;
    }
  }

  Napi::Object result = Napi::Object::New(env);
  result.Set("local", AddressToObject(env, local, local_length, connection, "getsockname"));
  result.Set("remote", AddressToObject(env, remote, remote_length, connection, "accept4"));
  result.Set("peerPid", Napi::Number::New(env, peer_pid));
  result.Set("peerUid", Napi::Number::New(env, peer_uid));
  result.Set("peerGid", Napi::Number::New(env, peer_gid));
  result.Set("fd", Napi::Number::New(env, guard.Release()));
  return result;
}

Napi::Value SocketAddon::LocalAddress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArgument(env, info[0]);
  struct sockaddr_storage local = {};
  socklen_t length = sizeof(local);
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&local), &length) != 0) {
    throw MakeSystemError(env, errno, "getsockname");
  }
  return AddressToObject(env, local, length, fd, "getsockname");
}

Napi::Value SocketAddon::Watch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArgument(env, info[0]);
  if (!info[1].IsFunction()) {
    throw MakeArgumentError(env, "The \"onReadable\" argument must be a function");
  }
  return ReadinessWatch::Create(env, this, watch_class_, fd, info[1].As<Napi::Function>());
}

Napi::Value SocketAddon::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArgument(env, info[0]);
  // A watch on the fd stops first: libuv must not poll a number that may be reused.
  auto found = registry_->by_fd.find(fd);
  if (found != registry_->by_fd.end()) found->second->CloseAndRelease();
  // On Linux the fd is gone even when close() says EINTR; retrying could close a reused number.
  if (close(fd) != 0 && errno != EINTR) throw MakeSystemError(env, errno, "close");
  return env.Undefined();
}

Napi::Value SocketAddon::GetSockOptInt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = FdArgument(env, info[0]);
  auto level = static_cast<int>(IntegerArgument(env, info[1], "level", 0, INT_MAX));
  auto name = static_cast<int>(IntegerArgument(env, info[2], "name", 0, INT_MAX));
  int value = 0;
  socklen_t length = sizeof(value);
  if (getsockopt(fd, level, name, &value, &length) != 0) {
    throw MakeSystemError(env, errno, "getsockopt");
  }
  return Napi::Number::New(env, value);
}

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::SocketAddon;
NODE_API_ADDON(SocketAddon)
