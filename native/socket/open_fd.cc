#include "open_fd.h"

#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace triggerd {

// Older headers lack these (Linux 4.15 added IPV6_FREEBIND).
#ifndef IPV6_FREEBIND
#define IPV6_FREEBIND 78
#endif
#ifndef IPV6_TRANSPARENT
#define IPV6_TRANSPARENT 75
#endif

namespace {

// Applies the options one by one, remembering the first fatal failure; a non-fatal one goes to
// `warnings` when the caller collects them.
class OptionSetter {
 public:
  OptionSetter(int fd, std::vector<Failure>* warnings, Failure* failure)
      : fd_(fd), warnings_(warnings), failure_(failure) {}

  bool failed() const { return failed_; }

  // `fatal`: a failure fails the call even when warnings are collected (systemd's rule).
  void Set(int level, int name, int value, const char* option, bool fatal = false) {
    if (failed_) return;
    if (setsockopt(fd_, level, name, &value, sizeof(value)) == 0) return;
    Report(errno, option, fatal);
  }

  void SetBytes(int level, int name, const void* value, socklen_t length, const char* option,
                bool fatal) {
    if (failed_) return;
    if (setsockopt(fd_, level, name, value, length) == 0) return;
    Report(errno, option, fatal);
  }

  // FORCE needs CAP_NET_ADMIN; without it, what rmem_max/wmem_max allow (as systemd).
  void SetBuffer(int force_name, int name, int value, const char* option) {
    if (failed_) return;
    if (setsockopt(fd_, SOL_SOCKET, force_name, &value, sizeof(value)) == 0) return;
    Set(SOL_SOCKET, name, value, option);
  }

  // IPv4 or IPv6 flavour of one option by family; an AF_INET6 socket also gets the IPv4 one,
  // best effort, for the IPv4-mapped traffic of a dual-stack socket (`also_v4`).
  void SetIp(int family, int v4_name, int v6_name, int value, const char* option, bool also_v4) {
    if (family == AF_INET6) {
      Set(IPPROTO_IPV6, v6_name, value, option);
      if (also_v4 && !failed_) setsockopt(fd_, IPPROTO_IP, v4_name, &value, sizeof(value));
    } else {
      Set(IPPROTO_IP, v4_name, value, option);
    }
  }

 private:
  void Report(int err, const char* option, bool fatal) {
    Failure failure;
    failure.err = err;
    failure.syscall = "setsockopt";
    failure.option = option;
    if (warnings_ != nullptr && !fatal) {
      warnings_->push_back(failure);
      return;
    }
    *failure_ = failure;
    failed_ = true;
  }

  int fd_;
  std::vector<Failure>* warnings_;
  Failure* failure_;
  bool failed_ = false;
};

void Fail(Failure* failure, const char* syscall, int err, const std::string& path = "") {
  failure->err = err;
  failure->syscall = syscall;
  failure->option = nullptr;
  failure->path = path;
}

// mkdir -p of the parents of `path`; directories this creates get exactly `mode`.
bool MakeParents(const std::string& path, mode_t mode, Failure* failure) {
  for (size_t i = 1; i < path.size(); i++) {
    if (path[i] != '/' || path[i - 1] == '/') continue;
    std::string dir = path.substr(0, i);
    if (mkdir(dir.c_str(), mode) == 0) {
      // mkdir applied the umask; DirectoryMode= means the mode itself.
      if (chmod(dir.c_str(), mode) != 0) {
        Fail(failure, "chmod", errno, dir);
        return false;
      }
    } else if (errno != EEXIST) {
      Fail(failure, "mkdir", errno, dir);
      return false;
    }
  }
  return true;
}

bool ApplyOptions(int fd, int family, int type, const OpenOptions& o,
                  std::vector<Failure>* warnings, Failure* failure) {
  OptionSetter set(fd, warnings, failure);
  if (family == AF_INET6 && o.bind_ipv6_only != BindIPv6Only::kDefault) {
    set.Set(IPPROTO_IPV6, IPV6_V6ONLY, o.bind_ipv6_only == BindIPv6Only::kIpv6Only ? 1 : 0,
            "bindIPv6Only", true);
  }
  if (!o.bind_to_device.empty()) {
    set.SetBytes(SOL_SOCKET, SO_BINDTODEVICE, o.bind_to_device.data(),
                 static_cast<socklen_t>(o.bind_to_device.size()), "bindToDevice", true);
  }
  if (o.reuse_port) set.Set(SOL_SOCKET, SO_REUSEPORT, 1, "reusePort");
  if (o.free_bind) set.SetIp(family, IP_FREEBIND, IPV6_FREEBIND, 1, "freeBind", false);
  if (o.transparent) set.SetIp(family, IP_TRANSPARENT, IPV6_TRANSPARENT, 1, "transparent", false);
  // A restarted daemon must be able to listen again while old connections sit in TIME_WAIT.
  if ((family == AF_INET || family == AF_INET6) && type == SOCK_STREAM) {
    set.Set(SOL_SOCKET, SO_REUSEADDR, 1, "reuseAddress", true);
  }
  if (o.keep_alive) set.Set(SOL_SOCKET, SO_KEEPALIVE, 1, "keepAlive");
  if (o.keep_alive_time) set.Set(IPPROTO_TCP, TCP_KEEPIDLE, *o.keep_alive_time, "keepAliveTimeSec");
  if (o.keep_alive_interval) {
    set.Set(IPPROTO_TCP, TCP_KEEPINTVL, *o.keep_alive_interval, "keepAliveIntervalSec");
  }
  if (o.keep_alive_probes) {
    set.Set(IPPROTO_TCP, TCP_KEEPCNT, *o.keep_alive_probes, "keepAliveProbes");
  }
  if (o.no_delay) set.Set(IPPROTO_TCP, TCP_NODELAY, 1, "noDelay");
  if (o.defer_accept) set.Set(IPPROTO_TCP, TCP_DEFER_ACCEPT, *o.defer_accept, "deferAcceptSec");
  // IP_TOS also sets sk_priority (rt_tos2priority), so an explicit Priority= comes after it.
  if (o.ip_tos) set.SetIp(family, IP_TOS, IPV6_TCLASS, *o.ip_tos, "ipTos", true);
  if (o.priority) set.Set(SOL_SOCKET, SO_PRIORITY, *o.priority, "priority");
  if (o.receive_buffer) set.SetBuffer(SO_RCVBUFFORCE, SO_RCVBUF, *o.receive_buffer, "receiveBuffer");
  if (o.send_buffer) set.SetBuffer(SO_SNDBUFFORCE, SO_SNDBUF, *o.send_buffer, "sendBuffer");
  if (o.ip_ttl) set.SetIp(family, IP_TTL, IPV6_UNICAST_HOPS, *o.ip_ttl, "ipTtl", true);
  if (o.mark) set.Set(SOL_SOCKET, SO_MARK, static_cast<int>(*o.mark), "mark");
  if (o.pass_credentials) set.Set(SOL_SOCKET, SO_PASSCRED, 1, "passCredentials");
  if (o.pass_security) set.Set(SOL_SOCKET, SO_PASSSEC, 1, "passSecurity");
  if (o.broadcast) set.Set(SOL_SOCKET, SO_BROADCAST, 1, "broadcast");
  return !set.failed();
}

}  // namespace

int OpenListeningSocket(int type, const SocketAddressSpec& address, const OpenOptions& options,
                        std::vector<Failure>* warnings, Failure* failure) {
  const int family = address.family;
  if (family == AF_NETLINK) type = SOCK_RAW;
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, address.protocol);
  if (fd < 0) {
    Fail(failure, "socket", errno);
    return -1;
  }
  const std::string& path = address.file_path;
  bool bound_path = false;
  auto fail = [&](const char* syscall, int err, const std::string& at) {
    close(fd);
    if (bound_path) unlink(path.c_str());
    Fail(failure, syscall, err, at);
    return -1;
  };

  if (!ApplyOptions(fd, family, type, options, warnings, failure)) {
    close(fd);
    return -1;
  }

  if (!path.empty()) {
    if (!MakeParents(path, options.directory_mode, failure)) {
      close(fd);
      return -1;
    }
    // A socket file left by an earlier run is replaced; anything else makes bind() say
    // EADDRINUSE (systemd would unlink it whatever it is).
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
  }

  if (bind(fd, reinterpret_cast<const struct sockaddr*>(&address.storage), address.length) != 0) {
    return fail("bind", errno, path);
  }
  if (!path.empty()) {
    bound_path = true;
    if (chmod(path.c_str(), options.socket_mode) != 0) return fail("chmod", errno, path);
    if ((options.uid != static_cast<uid_t>(-1) || options.gid != static_cast<gid_t>(-1)) &&
        lchown(path.c_str(), options.uid, options.gid) != 0) {
      return fail("chown", errno, path);
    }
  }
  if (type == SOCK_STREAM || type == SOCK_SEQPACKET) {
    if (listen(fd, options.backlog) != 0) return fail("listen", errno, path);
  }
  return fd;
}

int OpenFifo(const std::string& path, const OpenOptions& options, Failure* failure) {
  if (!MakeParents(path, options.directory_mode, failure)) return -1;
  if (mkfifo(path.c_str(), options.socket_mode) != 0 && errno != EEXIST) {
    Fail(failure, "mkfifo", errno, path);
    return -1;
  }
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0) {
    Fail(failure, "open", errno, path);
    return -1;
  }
  struct stat st;
  const char* failed = nullptr;
  int err = 0;
  if (fstat(fd, &st) != 0) {
    failed = "fstat";
    err = errno;
  } else if (!S_ISFIFO(st.st_mode)) {
    failed = "mkfifo";  // something else is at the path
    err = EEXIST;
  } else if (fchmod(fd, options.socket_mode) != 0) {
    failed = "chmod";
    err = errno;
  } else if ((options.uid != static_cast<uid_t>(-1) || options.gid != static_cast<gid_t>(-1)) &&
             fchown(fd, options.uid, options.gid) != 0) {
    failed = "chown";
    err = errno;
  }
  if (failed != nullptr) {
    close(fd);
    Fail(failure, failed, err, path);
    return -1;
  }
  return fd;
}

int OpenSpecial(const std::string& path, Failure* failure) {
  const int flags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW;
  int fd = open(path.c_str(), O_RDWR | flags);
  if (fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) {
    fd = open(path.c_str(), O_RDONLY | flags);
  }
  if (fd < 0) {
    Fail(failure, "open", errno, path);
    return -1;
  }
  struct stat st;
  int err = 0;
  if (fstat(fd, &st) != 0) {
    err = errno;
  } else if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
    err = EINVAL;  // a directory, FIFO, socket or block device is not a ListenSpecial= file
  }
  if (err != 0) {
    close(fd);
    Fail(failure, "fstat", err, path);
    return -1;
  }
  return fd;
}

int OpenMessageQueue(const std::string& name, mode_t mode, long max_messages, long message_size,
                     Failure* failure) {
  struct mq_attr attr = {};
  struct mq_attr* use_attr = nullptr;
  if (max_messages > 0 && message_size > 0) {
    attr.mq_maxmsg = max_messages;
    attr.mq_msgsize = message_size;
    use_attr = &attr;
  }
  mqd_t mq = mq_open(name.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK | O_CREAT, mode, use_attr);
  if (mq == static_cast<mqd_t>(-1)) {
    Fail(failure, "mq_open", errno, name);
    return -1;
  }
  int fd = static_cast<int>(mq);  // on Linux a message queue descriptor is an fd
  // mq_open applied the umask; MessageQueue mode means the mode itself.
  if (fchmod(fd, mode) != 0) {
    int err = errno;
    close(fd);
    Fail(failure, "chmod", err, name);
    return -1;
  }
  return fd;
}

}  // namespace triggerd
