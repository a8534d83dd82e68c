#include "notify_fd.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "../common/adopted_socket.h"

namespace triggerd {

namespace {

int Fail(int fd, const char* syscall, const char** failed_syscall, const char* bound_path) {
  int err = errno;
  close(fd);
  if (bound_path != nullptr) unlink(bound_path);
  *failed_syscall = syscall;
  return err;
}

}  // namespace

int OpenNotifyFd(const UnixAddress& address, NotifyFd* out, const char** failed_syscall) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *failed_syscall = "socket";
    return errno;
  }

  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0) {
    return Fail(fd, "setsockopt", failed_syscall, nullptr);
  }
  // Older kernels say ENOPROTOOPT (or EINVAL); then senders are identified by pid alone.
  bool pass_pidfd = setsockopt(fd, SOL_SOCKET, SO_PASSPIDFD, &on, sizeof(on)) == 0;
  if (!pass_pidfd && errno != ENOPROTOOPT && errno != EINVAL) {
    return Fail(fd, "setsockopt", failed_syscall, nullptr);
  }

  // SO_RCVBUFFORCE ignores rmem_max but needs CAP_NET_ADMIN; without it take what rmem_max allows.
  int wanted = kNotifyReceiveBufferBytes;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &wanted, sizeof(wanted)) != 0) {
    if (errno != EPERM || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &wanted, sizeof(wanted)) != 0) {
      return Fail(fd, "setsockopt", failed_syscall, nullptr);
    }
  }

  if (bind(fd, reinterpret_cast<const struct sockaddr*>(&address.address), address.length) != 0) {
    return Fail(fd, "bind", failed_syscall, nullptr);
  }
  const char* bound_path = address.abstract ? nullptr : address.address.sun_path;
  // bind() created the inode with the process umask applied; sending needs write permission.
  if (bound_path != nullptr && chmod(bound_path, 0666) != 0) {
    return Fail(fd, "chmod", failed_syscall, bound_path);
  }

  int granted = 0;
  socklen_t granted_length = sizeof(granted);
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &granted_length) != 0) {
    return Fail(fd, "getsockopt", failed_syscall, bound_path);
  }

  out->fd = fd;
  out->receive_buffer_bytes = granted;
  out->pass_pidfd = pass_pidfd;
  return 0;
}

int AdoptNotifyFd(int fd, const UnixAddress& address, NotifyFd* out, const char** failed_syscall) {
  int type = 0;
  socklen_t type_length = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_length) != 0) {
    *failed_syscall = "getsockopt";
    return errno;
  }
  struct sockaddr_un bound = {};
  socklen_t bound_length = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&bound), &bound_length) != 0) {
    *failed_syscall = "getsockname";
    return errno;
  }
  if (bound.sun_family != AF_UNIX || type != SOCK_DGRAM) {
    *failed_syscall = "getsockname";
    return EAFNOSUPPORT;
  }
  // Bound to this very address (a path's trailing NUL may or may not be counted).
  const char* want = reinterpret_cast<const char*>(&address.address);
  const char* have = reinterpret_cast<const char*>(&bound);
  socklen_t want_length = address.length;
  if (!address.abstract) {
    while (want_length > 0 && want[want_length - 1] == '\0') want_length--;
    while (bound_length > 0 && have[bound_length - 1] == '\0') bound_length--;
  }
  if (want_length != bound_length || std::memcmp(want, have, want_length) != 0) {
    *failed_syscall = "getsockname";
    return EADDRNOTAVAIL;
  }
  int err = PrepareAdoptedSocket(fd, failed_syscall);
  if (err != 0) return err;
  int on = 1;
  bool pass_pidfd = setsockopt(fd, SOL_SOCKET, SO_PASSPIDFD, &on, sizeof(on)) == 0;
  int granted = 0;
  err = ReceiveBufferBytes(fd, &granted, failed_syscall);
  if (err != 0) return err;
  out->fd = fd;
  out->receive_buffer_bytes = granted;
  out->pass_pidfd = pass_pidfd;
  return 0;
}

}  // namespace triggerd
