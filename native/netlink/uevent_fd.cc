#include "uevent_fd.h"

#include <fcntl.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "../common/adopted_socket.h"

namespace triggerd {

namespace {

int Fail(int fd, const char* syscall, const char** failed_syscall) {
  int err = errno;
  close(fd);
  *failed_syscall = syscall;
  return err;
}

}  // namespace

int OpenUeventFd(uint32_t groups, int receive_buffer_bytes, UeventFd* out,
                 const char** failed_syscall) {
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_KOBJECT_UEVENT);
  if (fd < 0) {
    *failed_syscall = "socket";
    return errno;
  }

  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0) {
    return Fail(fd, "setsockopt", failed_syscall);
  }
  // SO_RCVBUFFORCE ignores rmem_max but needs CAP_NET_ADMIN; without it, take what rmem_max
  // allows.
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer_bytes,
                 sizeof(receive_buffer_bytes)) != 0) {
    if (errno != EPERM || setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer_bytes,
                                     sizeof(receive_buffer_bytes)) != 0) {
      return Fail(fd, "setsockopt", failed_syscall);
    }
  }

  struct sockaddr_nl address = {};
  address.nl_family = AF_NETLINK;
  address.nl_pid = 0;  // let the kernel pick a free port id
  address.nl_groups = groups;
  if (bind(fd, reinterpret_cast<struct sockaddr*>(&address), sizeof(address)) != 0) {
    return Fail(fd, "bind", failed_syscall);
  }

  struct sockaddr_nl bound = {};
  socklen_t bound_length = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&bound), &bound_length) != 0) {
    return Fail(fd, "getsockname", failed_syscall);
  }
  if (bound_length < sizeof(bound) || bound.nl_family != AF_NETLINK) {
    errno = EAFNOSUPPORT;
    return Fail(fd, "getsockname", failed_syscall);
  }

  int granted = 0;
  socklen_t granted_length = sizeof(granted);
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &granted_length) != 0) {
    return Fail(fd, "getsockopt", failed_syscall);
  }
  if (granted_length != sizeof(granted)) {
    errno = EINVAL;
    return Fail(fd, "getsockopt", failed_syscall);
  }

  out->fd = fd;
  out->port_id = bound.nl_pid;
  out->receive_buffer_bytes = granted;
  return 0;
}

int AdoptUeventFd(int fd, uint32_t groups, UeventFd* out, const char** failed_syscall) {
  int value = 0;
  socklen_t length = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &value, &length) != 0) {
    *failed_syscall = "getsockopt";
    return errno;
  }
  struct sockaddr_nl bound = {};
  socklen_t bound_length = sizeof(bound);
  if (getsockname(fd, reinterpret_cast<struct sockaddr*>(&bound), &bound_length) != 0) {
    *failed_syscall = "getsockname";
    return errno;
  }
  if (bound_length < sizeof(bound) || bound.nl_family != AF_NETLINK ||
      value != NETLINK_KOBJECT_UEVENT) {
    *failed_syscall = "getsockname";
    return EAFNOSUPPORT;
  }
  if ((bound.nl_groups & groups) != groups) {
    *failed_syscall = "getsockname";
    return EINVAL;
  }
  int granted = 0;
  int err = PrepareAdoptedSocket(fd, failed_syscall);
  if (err == 0) err = ReceiveBufferBytes(fd, &granted, failed_syscall);
  if (err != 0) return err;
  out->fd = fd;
  out->port_id = bound.nl_pid;
  out->receive_buffer_bytes = granted;
  return 0;
}

}  // namespace triggerd
