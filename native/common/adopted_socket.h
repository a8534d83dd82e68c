// A datagram socket handed over across a re-exec (the uevent and sd_notify sockets): once its
// kind and address are checked, the settings every receiver needs again. The fd stays the
// caller's whatever happens.
#pragma once

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>

namespace triggerd {

// O_NONBLOCK, FD_CLOEXEC and SO_PASSCRED on `fd`. Returns 0, or an errno with `*failed_syscall`
// naming the step.
inline int PrepareAdoptedSocket(int fd, const char** failed_syscall) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    *failed_syscall = "fcntl";
    return errno;
  }
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0) {
    *failed_syscall = "setsockopt";
    return errno;
  }
  return 0;
}

// getsockopt(SO_RCVBUF): what the kernel granted, in `*granted`. Returns 0 or an errno.
inline int ReceiveBufferBytes(int fd, int* granted, const char** failed_syscall) {
  socklen_t granted_length = sizeof(*granted);
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, granted, &granted_length) != 0) {
    *failed_syscall = "getsockopt";
    return errno;
  }
  return 0;
}

}  // namespace triggerd
