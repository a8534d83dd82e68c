// Numbers for the pidfd interfaces that older libc headers lack (x86-64 system call numbers).
#ifndef TRIGGERD_COMMON_PIDFD_COMPAT_H_
#define TRIGGERD_COMMON_PIDFD_COMPAT_H_

#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif
#if defined(__x86_64__) && !defined(SYS_pidfd_send_signal)
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#endif  // TRIGGERD_COMMON_PIDFD_COMPAT_H_
