// Opening and binding a NETLINK_KOBJECT_UEVENT socket: plain POSIX, no JavaScript.
#pragma once

#include <cstdint>

namespace triggerd {

struct UeventFd {
  int fd = -1;
  uint32_t port_id = 0;             // getsockname's nl_pid, assigned by the kernel
  int receive_buffer_bytes = 0;     // getsockopt(SO_RCVBUF): what the kernel granted
};

// Opens a non-blocking, close-on-exec uevent socket with SO_PASSCRED, sizes its receive buffer
// (SO_RCVBUFFORCE, or SO_RCVBUF when that is not permitted) and binds it to `groups` with a
// kernel-assigned port id. Returns 0, or a positive errno with `*failed_syscall` set; on failure
// nothing is left open.
int OpenUeventFd(uint32_t groups, int receive_buffer_bytes, UeventFd* out,
                 const char** failed_syscall);

// Takes over an open uevent socket instead (one carried across the daemon's re-exec, with what
// the kernel queued on it meanwhile): checks that it is a NETLINK_KOBJECT_UEVENT socket bound to
// `groups`, makes it non-blocking and close-on-exec with SO_PASSCRED, and reads its port id and
// receive buffer. On failure the fd is left open (it is still the caller's).
int AdoptUeventFd(int fd, uint32_t groups, UeventFd* out, const char** failed_syscall);

}  // namespace triggerd
