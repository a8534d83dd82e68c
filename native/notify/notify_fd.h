// Opening and binding the sd_notify datagram socket: plain POSIX, no JavaScript.
#pragma once

#include "unix_address.h"

namespace triggerd {

// Linux 6.5 added SO_PASSPIDFD / SCM_PIDFD; Debian 12's headers predate it.
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

// systemd's NOTIFY_RCVBUF_SIZE: room for a burst from many services at once.
constexpr int kNotifyReceiveBufferBytes = 8 * 1024 * 1024;

struct NotifyFd {
  int fd = -1;
  int receive_buffer_bytes = 0;  // getsockopt(SO_RCVBUF): what the kernel granted
  bool pass_pidfd = false;       // SO_PASSPIDFD is on: each datagram brings the sender's pidfd
};

// Opens a non-blocking, close-on-exec AF_UNIX datagram socket with SO_PASSCRED (so every datagram
// carries SCM_CREDENTIALS whether the sender sent them or not) and, where the kernel has it,
// SO_PASSPIDFD; sizes its receive buffer (SO_RCVBUFFORCE, or SO_RCVBUF when that is not
// permitted) and binds it. A path socket is made writable for every user (mode 0666), since
// services running as any user must be able to send to it, as they can to systemd's.
// Returns 0, or a positive errno with `*failed_syscall` set; on failure nothing is left open and
// a path bound by this call is unlinked again.
int OpenNotifyFd(const UnixAddress& address, NotifyFd* out, const char** failed_syscall);

// Takes over an open notify socket instead (one carried across the daemon's re-exec, with the
// datagrams queued on it meanwhile): checks that it is an AF_UNIX datagram socket bound to
// `address`, makes it non-blocking and close-on-exec with SO_PASSCRED (and SO_PASSPIDFD where
// the kernel has it), and reads its receive buffer. On failure the fd is left open (the caller's).
int AdoptNotifyFd(int fd, const UnixAddress& address, NotifyFd* out, const char** failed_syscall);

}  // namespace triggerd
