#include "spawn_child.h"

#include "../common/pidfd_compat.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <linux/futex.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

// Kernel ABI constants that older libc headers may lack.
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_RDONLY
#define MOUNT_ATTR_RDONLY 0x00000001
#define MOUNT_ATTR_NOSUID 0x00000002
#define MOUNT_ATTR_NODEV 0x00000004
#define MOUNT_ATTR_NOEXEC 0x00000008
#endif
#if defined(__x86_64__)
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#endif

// The child's code runs on a stack ASan never saw and must not call into ASan's runtime (which
// may take locks or allocate): keep it uninstrumented.
#define CHILD_CODE __attribute__((no_sanitize_address))

namespace triggerd {

const char* const kSyscallNames[kSysCount] = {
    "",           "write",     "unshare",  "mount",   "mount_setattr", "statx",
    "socket",     "ioctl",     "open_tree", "move_mount", "fcntl",     "dup3",
    "close",      "close_range", "prlimit64", "open",  "setpriority",  "setsid",
    "setgroups",  "setresgid", "setresuid", "prctl",  "chdir",         "capget",
    "capset",     "execve",
};

namespace {

// struct clone_args of <linux/sched.h>, spelled out so <sched.h> and <linux/sched.h> need not
// meet in one translation unit.
struct CloneArgs {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
  uint64_t set_tid;
  uint64_t set_tid_size;
  uint64_t cgroup;
};

struct MountAttr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

// rt_sigaction's kernel struct: handler, flags, restorer, mask (not glibc's layout).
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};

struct CapHeader {
  uint32_t version;
  int pid;
};

struct CapData {
  uint32_t effective;
  uint32_t permitted;
  uint32_t inheritable;
};

constexpr uint32_t kCapabilityVersion3 = 0x20080522;
constexpr size_t kStackBytes = 128 * 1024;

}  // namespace

// glibc has no public clone3() wrapper, and a raw syscall() cannot be used with a new stack:
// the child would return into the parent's frames. This is what glibc's own __clone3 does:
// `fn` stays in rdx and `arg` is parked in r8 (the syscall instruction clobbers only rcx and
// r11); the child aligns its new stack, calls fn(arg) and exits with its return value.
#if defined(__x86_64__)
extern "C" long triggerd_clone3(CloneArgs* args, size_t size, int (*fn)(void*), void* arg);
asm(R"(
	.pushsection .text
	.p2align 4
	.globl triggerd_clone3
	.hidden triggerd_clone3
	.type triggerd_clone3, @function
triggerd_clone3:
	endbr64
	mov %rcx, %r8
	mov $435, %eax
	syscall
	test %rax, %rax
	jz 1f
	ret
1:
	xor %ebp, %ebp
	and $-16, %rsp
	mov %r8, %rdi
	call *%rdx
	mov %eax, %edi
	mov $231, %eax
	syscall
	hlt
	.size triggerd_clone3, .-triggerd_clone3
	.popsection
)");
#define TRIGGERD_HAVE_CLONE3 1
#endif

namespace {

[[noreturn]] CHILD_CODE void Fail(const ChildPlan* plan, int step, int sys, int err, int detail) {
  plan->report->step = step;
  plan->report->err = err;
  plan->report->syscall = sys;
  plan->report->detail = detail;
  // Not _exit(): sanitizers intercept it (leak checks, atexit-like hooks).
  for (;;) syscall(SYS_exit_group, 127);
}

CHILD_CODE void ResetSignals(const ChildPlan* plan) {
  // Handlers would be the parent's code running on our shared memory, and SIG_IGN (Node ignores
  // SIGPIPE) survives exec: every signal back to SIG_DFL, then unblock all. When the clone
  // cleared the handlers already, only the ignored ones are left to reset.
  KernelSigaction default_action = {};
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    if (plan->handlers_cleared && ((plan->ignored_signals >> (sig - 1)) & 1) == 0) continue;
    syscall(SYS_rt_sigaction, sig, &default_action, nullptr, sizeof(uint64_t));
  }
  uint64_t none = 0;
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, sizeof(uint64_t));
}

CHILD_CODE unsigned long StatfsToMountFlags(unsigned long f) {
  unsigned long flags = 0;
  if (f & ST_RDONLY) flags |= MS_RDONLY;
  if (f & ST_NOSUID) flags |= MS_NOSUID;
  if (f & ST_NODEV) flags |= MS_NODEV;
  if (f & ST_NOEXEC) flags |= MS_NOEXEC;
  if (f & ST_SYNCHRONOUS) flags |= MS_SYNCHRONOUS;
  if (f & ST_MANDLOCK) flags |= MS_MANDLOCK;
  if (f & ST_NOATIME) flags |= MS_NOATIME;
  if (f & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (f & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

CHILD_CODE unsigned long AttrsToMountFlags(uint64_t attrs) {
  unsigned long flags = 0;
  if (attrs & MOUNT_ATTR_RDONLY) flags |= MS_RDONLY;
  if (attrs & MOUNT_ATTR_NOSUID) flags |= MS_NOSUID;
  if (attrs & MOUNT_ATTR_NODEV) flags |= MS_NODEV;
  if (attrs & MOUNT_ATTR_NOEXEC) flags |= MS_NOEXEC;
  return flags;
}

// Always recursive: a plain bind would hide the mounts below the path behind the copy.
CHILD_CODE int BindOntoItself(const char* target) {
  return syscall(SYS_mount, target, target, nullptr, MS_BIND | MS_REC, nullptr) == 0 ? 0 : errno;
}

// Before mount_setattr (Linux 5.12): a bind remount that keeps the flags the mount already has
// (a plain MS_REMOUNT|MS_BIND|MS_RDONLY would clear nosuid/nodev). Only the top mount.
CHILD_CODE int LegacyRemount(const char* target, uint64_t attrs, int* sys) {
  for (int attempt = 0; attempt < 2; attempt++) {
    struct statfs fs;
    *sys = kSysStatx;
    if (syscall(SYS_statfs, target, &fs) != 0) return errno;
    unsigned long flags =
        MS_REMOUNT | MS_BIND | StatfsToMountFlags(fs.f_flags) | AttrsToMountFlags(attrs);
    *sys = kSysMount;
    if (syscall(SYS_mount, nullptr, target, nullptr, flags, nullptr) == 0) return 0;
    int err = errno;
    if (err != EINVAL || attempt > 0) return err;
    if ((err = BindOntoItself(target)) != 0) return err;
  }
  return EINVAL;
}

// Sets mount attributes (read-only, nosuid, ...) on the mount at `target`, and with `recursive`
// on every mount below it. A path that is not the root of a mount is bound onto itself first
// so that it has flags of its own. AT_NO_AUTOMOUNT: never trigger an automount from here (we
// may be the automount daemon, and our parent thread is suspended until we exec).
CHILD_CODE int SetMountAttributes(const char* target, bool recursive, uint64_t attrs, int* sys) {
  MountAttr attr = {};
  attr.attr_set = attrs;
  unsigned int flags = AT_NO_AUTOMOUNT | (recursive ? AT_RECURSIVE : 0);
  *sys = kSysMountSetattr;
  if (syscall(SYS_mount_setattr, AT_FDCWD, target, flags, &attr, sizeof(attr)) == 0) return 0;
  int err = errno;
  if (err == ENOSYS) return LegacyRemount(target, attrs, sys);
  if (err != EINVAL) return err;
  *sys = kSysMount;
  if ((err = BindOntoItself(target)) != 0) return err;
  *sys = kSysMountSetattr;
  return syscall(SYS_mount_setattr, AT_FDCWD, target, flags, &attr, sizeof(attr)) == 0 ? 0 : errno;
}

CHILD_CODE int MakeInaccessible(const ChildPlan* plan, const ChildMount& mount, int* sys) {
  struct statx stx;
  *sys = kSysStatx;
  if (syscall(SYS_statx, AT_FDCWD, mount.target, AT_NO_AUTOMOUNT, STATX_TYPE, &stx) != 0) {
    return errno;
  }
  const char* source;
  *sys = kSysMount;
  if (S_ISDIR(stx.stx_mode)) {
    if (plan->inaccessible_directory == nullptr) {
      // No prepared empty directory: an empty read-only tmpfs with mode 000 hides it as well.
      unsigned long flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
      return syscall(SYS_mount, "tmpfs", mount.target, "tmpfs", flags, "mode=000") == 0 ? 0 : errno;
    }
    source = plan->inaccessible_directory;
  } else {
    // A bind mount must be a directory over a directory, a non-directory over a non-directory:
    // an empty mode-000 file covers files, sockets, fifos and device nodes alike.
    if (plan->inaccessible_file == nullptr) return EOPNOTSUPP;
    source = plan->inaccessible_file;
  }
  if (syscall(SYS_mount, source, mount.target, nullptr, MS_BIND, nullptr) != 0) return errno;
  return SetMountAttributes(
      mount.target, false, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
      sys);
}

CHILD_CODE void ApplyMounts(const ChildPlan* plan) {
  if (syscall(SYS_unshare, CLONE_NEWNS) != 0) {
    Fail(plan, kStepMountNamespace, kSysUnshare, errno, -1);
  }
  // Slave rather than private: mounts the host makes later (an automount being served, a disk
  // plugged in) still reach the service, and nothing mounted here leaks out.
  if (syscall(SYS_mount, nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0) {
    Fail(plan, kStepMountNamespace, kSysMount, errno, -1);
  }
  for (size_t i = 0; i < plan->mount_count; i++) {
    const ChildMount& mount = plan->mounts[i];
    int sys = kSysMount;
    int err = 0;
    switch (mount.kind) {
      case MountKind::kBind: {
        unsigned long flags = MS_BIND | (mount.recursive ? MS_REC : 0);
        if (syscall(SYS_mount, mount.source, mount.target, nullptr, flags, nullptr) != 0) {
          err = errno;
        } else if (mount.read_only) {
          err = SetMountAttributes(mount.target, mount.recursive, MOUNT_ATTR_RDONLY, &sys);
        }
        break;
      }
      case MountKind::kTmpfs:
        if (syscall(SYS_mount, "tmpfs", mount.target, "tmpfs", MS_NOSUID | MS_NODEV, mount.data) != 0) {
          err = errno;
        }
        break;
      case MountKind::kRemountReadOnly:
        err = SetMountAttributes(mount.target, mount.recursive, MOUNT_ATTR_RDONLY, &sys);
        break;
      case MountKind::kInaccessible:
        err = MakeInaccessible(plan, mount, &sys);
        break;
    }
    if (err == 0 || (mount.optional && err == ENOENT)) continue;
    Fail(plan, kStepMountNamespace, sys, err, static_cast<int>(i));
  }
}

// sysfs shows the network devices of the namespace that mounted it, so a service with its own
// network namespace needs a sysfs of its own on /sys; the mounts below /sys (cgroup, bpf,
// debugfs, ...) are cloned first and moved onto the new one.
CHILD_CODE void MountPrivateSysfs(const ChildPlan* plan) {
  for (size_t i = 0; i < plan->sysfs_submount_count; i++) {
    unsigned int flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE | AT_NO_AUTOMOUNT;
    long fd = syscall(SYS_open_tree, AT_FDCWD, plan->sysfs_submounts[i], flags);
    if (fd < 0 && errno != ENOENT) Fail(plan, kStepNetwork, kSysOpenTree, errno, static_cast<int>(i));
    plan->submount_scratch[i] = static_cast<int>(fd);
  }
  unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  struct statfs fs;
  if (syscall(SYS_statfs, "/sys", &fs) == 0 && (fs.f_flags & ST_RDONLY)) flags |= MS_RDONLY;
  if (syscall(SYS_mount, "sysfs", "/sys", "sysfs", flags, nullptr) != 0) {
    Fail(plan, kStepNetwork, kSysMount, errno, -1);
  }
  for (size_t i = 0; i < plan->sysfs_submount_count; i++) {
    int fd = plan->submount_scratch[i];
    if (fd < 0) continue;
    if (syscall(SYS_move_mount, fd, "", AT_FDCWD, plan->sysfs_submounts[i],
                MOVE_MOUNT_F_EMPTY_PATH) != 0 &&
        errno != ENOENT) {
      Fail(plan, kStepNetwork, kSysMoveMount, errno, static_cast<int>(i));
    }
    syscall(SYS_close, fd);
  }
}

CHILD_CODE void SetUpNetwork(const ChildPlan* plan) {
  if (syscall(SYS_unshare, CLONE_NEWNET) != 0) Fail(plan, kStepNetwork, kSysUnshare, errno, -1);
  long sock = syscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) Fail(plan, kStepNetwork, kSysSocket, errno, -1);
  struct ifreq request = {};
  request.ifr_name[0] = 'l';
  request.ifr_name[1] = 'o';
  if (syscall(SYS_ioctl, sock, SIOCGIFFLAGS, &request) != 0) {
    Fail(plan, kStepNetwork, kSysIoctl, errno, -1);
  }
  request.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (syscall(SYS_ioctl, sock, SIOCSIFFLAGS, &request) != 0) {
    Fail(plan, kStepNetwork, kSysIoctl, errno, -1);
  }
  syscall(SYS_close, sock);
  if (plan->private_sysfs && plan->mount_namespace) MountPrivateSysfs(plan);
}

CHILD_CODE int StepForFd(int child_fd) {
  if (child_fd == 0) return kStepStdin;
  if (child_fd == 1) return kStepStdout;
  if (child_fd == 2) return kStepStderr;
  return kStepFds;
}

CHILD_CODE void PlaceFds(const ChildPlan* plan) {
  // Every source must be open before any copy is made: a copy takes the lowest free number at
  // or above dup_base, which could be a source that was not open, and that source would then
  // silently become another file.
  for (size_t i = 0; i < plan->fd_count; i++) {
    const FdSpec& fd = plan->fds[i];
    if (syscall(SYS_fcntl, fd.parent_fd, F_GETFD) < 0) {
      Fail(plan, StepForFd(fd.child_fd), kSysFcntl, errno, fd.child_fd);
    }
  }
  // Copy every source above all targets first, so placing one fd can never overwrite a source
  // that is still to be placed (fd 1 -> 0 and fd 0 -> 1, say). When every source is above every
  // target already (the usual case: /dev/null and pipes the daemon opened), nothing can be
  // overwritten and each goes to its target directly.
  bool sources_clear = true;
  for (size_t i = 0; i < plan->fd_count; i++) {
    if (plan->fds[i].parent_fd <= plan->max_child_fd) sources_clear = false;
  }
  for (size_t i = 0; i < plan->fd_count; i++) {
    const FdSpec& fd = plan->fds[i];
    if (sources_clear) {
      plan->fd_scratch[i] = fd.parent_fd;
      continue;
    }
    long copy = syscall(SYS_fcntl, fd.parent_fd, F_DUPFD_CLOEXEC, plan->dup_base);
    if (copy < 0) Fail(plan, StepForFd(fd.child_fd), kSysFcntl, errno, fd.child_fd);
    plan->fd_scratch[i] = static_cast<int>(copy);
  }
  // dup3 leaves the target without FD_CLOEXEC; the high copies keep it and go below.
  for (size_t i = 0; i < plan->fd_count; i++) {
    const FdSpec& fd = plan->fds[i];
    if (syscall(SYS_dup3, plan->fd_scratch[i], fd.child_fd, 0) < 0) {
      Fail(plan, StepForFd(fd.child_fd), kSysDup3, errno, fd.child_fd);
    }
  }
  // O_NONBLOCK belongs to the open file description, which the daemon may share (a listening
  // socket): set or clear it as the plan says, after every fd is in place.
  for (size_t i = 0; i < plan->fd_count; i++) {
    const FdSpec& fd = plan->fds[i];
    if (fd.non_block == NonBlockMode::kKeep) continue;
    long flags = syscall(SYS_fcntl, fd.child_fd, F_GETFL);
    if (flags < 0) Fail(plan, StepForFd(fd.child_fd), kSysFcntl, errno, fd.child_fd);
    long wanted = fd.non_block == NonBlockMode::kSet ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    if (wanted != flags && syscall(SYS_fcntl, fd.child_fd, F_SETFL, wanted) != 0) {
      Fail(plan, StepForFd(fd.child_fd), kSysFcntl, errno, fd.child_fd);
    }
  }
  for (size_t i = 0; i < plan->gap_count; i++) syscall(SYS_close, plan->gap_fds[i]);
  unsigned int first = static_cast<unsigned int>(plan->max_child_fd) + 1;
  if (syscall(SYS_close_range, first, ~0U, 0) != 0) {
    if (errno != ENOSYS) Fail(plan, kStepFds, kSysCloseRange, errno, -1);
    unsigned int limit = plan->close_limit;
    if (limit == 0) {
      uint64_t nofile[2] = {0, 0};  // struct rlimit64
      limit = 1U << 20;
      if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, nofile) == 0 && nofile[0] < limit) {
        limit = static_cast<unsigned int>(nofile[0]);
      }
    }
    for (unsigned int fd = first; fd < limit; fd++) syscall(SYS_close, fd);
  }
}

CHILD_CODE void SetLimits(const ChildPlan* plan) {
  for (size_t i = 0; i < plan->rlimit_count; i++) {
    const RlimitSpec& limit = plan->rlimits[i];
    uint64_t values[2] = {limit.soft, limit.hard};  // struct rlimit64
    if (syscall(SYS_prlimit64, 0, limit.resource, values, nullptr) != 0) {
      Fail(plan, kStepLimits, kSysPrlimit, errno, limit.resource);
    }
  }
}

CHILD_CODE void AdjustOomScore(const ChildPlan* plan) {
  long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (fd < 0) Fail(plan, kStepOomAdjust, kSysOpen, errno, -1);
  long written = syscall(SYS_write, fd, plan->oom_text, plan->oom_length);
  if (written != static_cast<long>(plan->oom_length)) {
    Fail(plan, kStepOomAdjust, kSysWrite, written < 0 ? errno : EIO, -1);
  }
  syscall(SYS_close, fd);
}

CHILD_CODE void DropBoundingSet(const ChildPlan* plan) {
  for (int cap = 0; cap <= plan->last_cap && cap < 64; cap++) {
    if ((plan->bounding_set >> cap) & 1) continue;
    // Only what is still in the set: dropping needs CAP_SETPCAP, reading does not.
    long present = syscall(SYS_prctl, PR_CAPBSET_READ, cap, 0, 0, 0);
    if (present <= 0) continue;
    if (syscall(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
      Fail(plan, kStepCapabilities, kSysPrctl, errno, cap);
    }
  }
}

CHILD_CODE void RaiseAmbient(const ChildPlan* plan) {
  // A capability can only become ambient when it is permitted (kept across setresuid by
  // PR_SET_KEEPCAPS) and inheritable.
  CapHeader header = {kCapabilityVersion3, 0};
  CapData data[2] = {};
  if (syscall(SYS_capget, &header, data) != 0) Fail(plan, kStepCapabilities, kSysCapget, errno, -1);
  data[0].inheritable |= static_cast<uint32_t>(plan->ambient);
  data[1].inheritable |= static_cast<uint32_t>(plan->ambient >> 32);
  if (syscall(SYS_capset, &header, data) != 0) Fail(plan, kStepCapabilities, kSysCapset, errno, -1);
  for (int cap = 0; cap < 64; cap++) {
    if (((plan->ambient >> cap) & 1) == 0) continue;
    if (syscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) {
      Fail(plan, kStepCapabilities, kSysPrctl, errno, cap);
    }
  }
}

CHILD_CODE void WriteListenPid(const ChildPlan* plan) {
  long pid = syscall(SYS_getpid);
  char digits[24];
  int length = 0;
  do {
    digits[length++] = static_cast<char>('0' + pid % 10);
    pid /= 10;
  } while (pid > 0 && length < 23);
  for (int i = 0; i < length; i++) plan->listen_pid_digits[i] = digits[length - 1 - i];
  plan->listen_pid_digits[length] = '\0';
}

// Runs in the child, on ChildStack, sharing the parent's memory: system calls only.
// A parked child's last steps (LaunchParkedChild). Once it says it is parked, the parent runs
// again on the same memory, so from there on only raw system calls: glibc's would set errno,
// which is the parent thread's.
#if defined(__x86_64__)
CHILD_CODE inline long RawSyscall(long nr, long a, long b, long c) {
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a), "S"(b), "d"(c)
                   : "rcx", "r11", "memory");
  return ret;
}
#define TRIGGERD_HAVE_PARKING 1
#elif defined(__aarch64__)
CHILD_CODE inline long RawSyscall(long nr, long a, long b, long c) {
  register long x8 __asm__("x8") = nr;
  register long x0 __asm__("x0") = a;
  register long x1 __asm__("x1") = b;
  register long x2 __asm__("x2") = c;
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
}
#define TRIGGERD_HAVE_PARKING 1
#endif

#if defined(TRIGGERD_HAVE_PARKING)
CHILD_CODE void RawSay(const char* text) {
  long n = 0;
  while (text[n] != '\0') n++;
  RawSyscall(SYS_write, 2, reinterpret_cast<long>(text), n);
}

CHILD_CODE const char* ExecErrorText(long err) {
  switch (err) {
    case ENOENT: return "No such file or directory";
    case EACCES: return "Permission denied";
    case ENOEXEC: return "Exec format error";
    case ENOTDIR: return "Not a directory";
    case EISDIR: return "Is a directory";
    case ENOMEM: return "Cannot allocate memory";
    case E2BIG: return "Argument list too long";
    case ETXTBSY: return "Text file busy";
    case ELOOP: return "Too many levels of symbolic links";
    case ENAMETOOLONG: return "File name too long";
    case EPERM: return "Operation not permitted";
    case EIO: return "Input/output error";
    default: return "exec failed";
  }
}
#endif

[[noreturn]] CHILD_CODE void ParkThenExec(const ChildPlan* plan) {
#if defined(TRIGGERD_HAVE_PARKING)
  // What ps shows until the exec. Not dumpable meanwhile: no other process of its user may
  // ptrace it, and so reach the daemon's memory (the exec makes the job dumpable as usual).
  RawSyscall(SYS_prctl, PR_SET_NAME, reinterpret_cast<long>("triggerd-park"), 0);
  RawSyscall(SYS_prctl, PR_SET_DUMPABLE, 0, 0);
  __atomic_store_n(plan->park_word, kParkParked, __ATOMIC_RELEASE);
  // A shared (not private) wake: the parent waits the way the kernel's CLEARTID wakes.
  RawSyscall(SYS_futex, reinterpret_cast<long>(plan->park_word), FUTEX_WAKE, 1);
  char go = 0;
  long n;
  do {
    n = RawSyscall(SYS_read, plan->park_go_fd, reinterpret_cast<long>(&go), 1);
  } while (n == -EINTR);
  // EOF: the launch was released, or the parent is gone. Nothing ran; nothing to say.
  if (n != 1) {
    for (;;) RawSyscall(SYS_exit_group, 0, 0, 0);
  }
  RawSyscall(SYS_close, plan->park_go_fd, 0, 0);
  long err = -RawSyscall(SYS_execve, reinterpret_cast<long>(plan->path),
                         reinterpret_cast<long>(plan->argv), reinterpret_cast<long>(plan->envp));
  // As systemd's: exit status 203 (EXEC), the reason on stderr (the job's log).
  RawSay("Failed to execute ");
  RawSay(plan->path);
  RawSay(": ");
  RawSay(ExecErrorText(err));
  RawSay("\n");
  for (;;) RawSyscall(SYS_exit_group, 203, 0, 0);
#else
  Fail(plan, kStepExec, kSysExecve, ENOSYS, -1);
#endif
}

CHILD_CODE int SpawnChildMain(void* arg) {
  const ChildPlan* plan = static_cast<const ChildPlan*>(arg);
  __atomic_store_n(&plan->report->ran, 1, __ATOMIC_RELEASE);
  ResetSignals(plan);

  if (plan->cgroup_procs_fd >= 0 && syscall(SYS_write, plan->cgroup_procs_fd, "0", 1) != 1) {
    Fail(plan, kStepCgroup, kSysWrite, errno, -1);
  }
  if (plan->mount_namespace) ApplyMounts(plan);
  if (plan->private_network) SetUpNetwork(plan);
  PlaceFds(plan);
  SetLimits(plan);
  if (plan->oom_text != nullptr) AdjustOomScore(plan);
  if (plan->set_nice && syscall(SYS_setpriority, PRIO_PROCESS, 0, plan->nice) != 0) {
    Fail(plan, kStepNice, kSysSetpriority, errno, -1);
  }
  if (plan->new_session && syscall(SYS_setsid) < 0) Fail(plan, kStepSetsid, kSysSetsid, errno, -1);
  if (plan->set_umask) syscall(SYS_umask, plan->umask);
  // Raw system calls for credentials: glibc's wrappers would broadcast the change to every
  // thread of the process they believe they are in, which is the parent's.
  if (plan->set_groups &&
      syscall(SYS_setgroups, plan->group_count, plan->group_count > 0 ? plan->groups : nullptr) != 0) {
    Fail(plan, kStepGroup, kSysSetgroups, errno, -1);
  }
  if (plan->set_gid && syscall(SYS_setresgid, plan->gid, plan->gid, plan->gid) != 0) {
    Fail(plan, kStepGroup, kSysSetresgid, errno, -1);
  }
  // The bounding set is dropped while we still hold CAP_SETPCAP, i.e. before the user change.
  if (plan->set_bounding_set) DropBoundingSet(plan);
  if (plan->set_uid) {
    if (plan->set_ambient && syscall(SYS_prctl, PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) {
      Fail(plan, kStepUser, kSysPrctl, errno, -1);
    }
    if (syscall(SYS_setresuid, plan->uid, plan->uid, plan->uid) != 0) {
      Fail(plan, kStepUser, kSysSetresuid, errno, -1);
    }
  }
  // After the user change, so the directory is checked with the service's permissions.
  if (plan->cwd != nullptr && syscall(SYS_chdir, plan->cwd) != 0) {
    if (!plan->cwd_optional) Fail(plan, kStepChdir, kSysChdir, errno, -1);
    syscall(SYS_chdir, "/");
  }
  if (plan->set_ambient) RaiseAmbient(plan);
  if (plan->no_new_privileges && syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    Fail(plan, kStepNoNewPrivileges, kSysPrctl, errno, -1);
  }
  if (plan->listen_pid_digits != nullptr) WriteListenPid(plan);
  if (plan->park_go_fd >= 0) ParkThenExec(plan);
  syscall(SYS_execve, plan->path, plan->argv, plan->envp);
  Fail(plan, kStepExec, kSysExecve, errno, -1);
}

// A quiet child (exit_signal 0) that died before its exec without a report (killed: by an
// administrator, the OOM killer) is seen by waitid only with __WCLONE: an exec resets the exit
// signal to SIGCHLD, and the child watcher reaps with waitid(P_ALL), which never sees it. Reaped
// here, and the spawn fails, instead of a start waiting for an exit nobody reports. No WNOHANG:
// the vfork wait ends in the dying child's mm release, before it is a zombie; a child that
// exec'd (its exit signal reset before that release) is not eligible, and waitid says ECHILD.
void DiedBeforeExec(LaunchResult* result) {
  siginfo_t info = {};
  int rc;
  do {
    rc = static_cast<int>(
        syscall(SYS_waitid, P_PIDFD, result->pidfd, &info, WEXITED | __WCLONE, nullptr));
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 || info.si_pid == 0) return;
  close(result->pidfd);
  result->pidfd = -1;
  result->pid = -1;
  result->err = EINTR;
  result->syscall = "clone3";
}

}  // namespace

ChildStack::~ChildStack() {
  if (mapping_ != nullptr) munmap(mapping_, mapping_size_);
}

int ChildStack::Ensure() {
  if (mapping_ != nullptr) return 0;
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_t total = kStackBytes + page;
  void* mapping = mmap(nullptr, total, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
  if (mapping == MAP_FAILED) return errno;
  // A guard page below the stack: an overflow faults instead of writing over other memory.
  if (mprotect(mapping, page, PROT_NONE) != 0) {
    int err = errno;
    munmap(mapping, total);
    return err;
  }
  mapping_ = mapping;
  mapping_size_ = total;
  base_ = static_cast<char*>(mapping) + page;
  size_ = kStackBytes;
  return 0;
}

namespace {

int OpenCgroupProcs(int cgroup_fd) {
  return static_cast<int>(syscall(SYS_openat, cgroup_fd, "cgroup.procs", O_WRONLY | O_CLOEXEC));
}

// A child cloned into a cgroup (CLONE_INTO_CGROUP) that is gone without having run a single
// step: Linux 6.18 (seen here; the kill_seq check of cgroup.kill's fork handling) SIGKILLs such
// a child at its birth whenever cgroup.kill was ever written to that group, as to a unit's group
// kept between runs, or one an earlier daemon left. It is reaped here, unseen by anyone, and the
// caller clones again with the child joining through cgroup.procs, which that check spares.
bool KilledAtBirth(const ChildPlan* plan, LaunchResult* result) {
  if (__atomic_load_n(&plan->report->ran, __ATOMIC_ACQUIRE) != 0 || plan->report->step >= 0) {
    return false;
  }
  siginfo_t info;
  int rc;
  do {
    rc = static_cast<int>(syscall(SYS_waitid, P_PIDFD, result->pidfd, &info, WEXITED | __WALL, nullptr));
  } while (rc != 0 && errno == EINTR);
  close(result->pidfd);
  result->pidfd = -1;
  result->pid = -1;
  return true;
}

}  // namespace

#if defined(TRIGGERD_HAVE_CLONE3)
namespace {

// clone3's arguments for a child on `stack` (in the cgroup when `cgroup_fd` >= 0, its pidfd to
// `pidfd`), asking the kernel to clear its handlers where the plan wants that.
CloneArgs ChildCloneArgs(uint64_t flags, int cgroup_fd, int* pidfd, int exit_signal,
                         const ChildStack& stack, ChildPlan* plan) {
  CloneArgs args = {};
  args.flags = flags;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  args.pidfd = reinterpret_cast<uintptr_t>(pidfd);
  args.exit_signal = static_cast<uint64_t>(exit_signal);
  args.stack = reinterpret_cast<uintptr_t>(stack.base());
  args.stack_size = stack.size();
  if (plan->clear_handlers) {
    args.flags |= CLONE_CLEAR_SIGHAND;
    plan->handlers_cleared = true;
  }
  return args;
}

}  // namespace
#endif

LaunchResult LaunchChild(ChildPlan* plan, const ChildStack& stack, int cgroup_fd,
                         CloneMethod method, std::atomic<bool>* clone3_missing, int exit_signal) {
  LaunchResult result;
  plan->cgroup_procs_fd = -1;
  plan->handlers_cleared = false;
  plan->report->ran = 0;
  int procs_fd = -1;

  // Every signal blocked from before the clone until the child has reset its handlers: a
  // handler must never run in the child, which shares our memory.
  sigset_t all;
  sigset_t saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);

  long pid = -ENOSYS;
  bool try_clone3 = method != CloneMethod::kClone && !*clone3_missing;
#if !defined(TRIGGERD_HAVE_CLONE3)
  try_clone3 = false;
#endif
  if (try_clone3) {
#if defined(TRIGGERD_HAVE_CLONE3)
    CloneArgs args = ChildCloneArgs(CLONE_VM | CLONE_VFORK | CLONE_PIDFD, cgroup_fd, &result.pidfd,
                                    exit_signal, stack, plan);
    pid = triggerd_clone3(&args, sizeof(args), SpawnChildMain, plan);
    if (pid == -EINVAL && plan->clear_handlers) {
      // A kernel before 5.5: the child resets every signal itself.
      args.flags &= ~static_cast<uint64_t>(CLONE_CLEAR_SIGHAND);
      plan->handlers_cleared = false;
      pid = triggerd_clone3(&args, sizeof(args), SpawnChildMain, plan);
    }
    bool rejoin = pid < 0 && cgroup_fd >= 0 && pid != -ENOSYS && pid != -EAGAIN && pid != -ENOMEM;
    if (pid > 0 && cgroup_fd >= 0 && method != CloneMethod::kClone3NoRejoin) {
      // With CLONE_VFORK we run again once it exec'd or exited: the report says which.
      result.pid = static_cast<pid_t>(pid);
      rejoin = result.cgroup_rejoined = KilledAtBirth(plan, &result);
    }
    if (rejoin) {
      // clone3 could not start the child in the cgroup (a kernel without CLONE_INTO_CGROUP,
      // a cgroup it refuses, a child killed at its birth there): try again with the child
      // joining through cgroup.procs.
      procs_fd = OpenCgroupProcs(cgroup_fd);
      if (procs_fd < 0) {
        result.err = errno;
        result.syscall = "open";
        result.cgroup_step = true;
        pthread_sigmask(SIG_SETMASK, &saved, nullptr);
        return result;
      }
      plan->cgroup_procs_fd = procs_fd;
      args.flags &= ~static_cast<uint64_t>(CLONE_INTO_CGROUP);
      args.cgroup = 0;
      pid = triggerd_clone3(&args, sizeof(args), SpawnChildMain, plan);
    }
    if (pid == -ENOSYS && method == CloneMethod::kAuto) {
      *clone3_missing = true;
    } else {
      result.used = CloneMethod::kClone3;
      if (pid < 0) {
        result.err = static_cast<int>(-pid);
        result.syscall = "clone3";
      }
    }
#endif
  }
  if (result.used != CloneMethod::kClone3) {
    // glibc's clone() runs fn on the given stack; it cannot place the child in a cgroup.
    if (cgroup_fd >= 0 && procs_fd < 0) {
      procs_fd = OpenCgroupProcs(cgroup_fd);
      if (procs_fd < 0) {
        result.err = errno;
        result.syscall = "open";
        result.cgroup_step = true;
        pthread_sigmask(SIG_SETMASK, &saved, nullptr);
        return result;
      }
    }
    plan->cgroup_procs_fd = procs_fd;
    plan->handlers_cleared = false;
    result.used = CloneMethod::kClone;
    void* top = static_cast<char*>(stack.base()) + stack.size();
    pid = clone(SpawnChildMain, top, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | exit_signal, plan,
                reinterpret_cast<pid_t*>(&result.pidfd));
    if (pid < 0) {
      result.err = errno;
      result.syscall = "clone";
    }
  }
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (procs_fd >= 0) close(procs_fd);
  if (result.err == 0) result.pid = static_cast<pid_t>(pid);
  if (result.err == 0 && exit_signal == 0 && plan->report->step < 0) DiedBeforeExec(&result);
  return result;
}

LaunchResult LaunchParkedChild(ChildPlan* plan, const ChildStack& stack, int cgroup_fd) {
  LaunchResult result;
  plan->cgroup_procs_fd = -1;
  plan->handlers_cleared = false;
#if defined(TRIGGERD_HAVE_CLONE3) && defined(TRIGGERD_HAVE_PARKING)
  sigset_t all;
  sigset_t saved;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &saved);
  int procs_fd = -1;
  // A second time only for a child killed at its birth in the cgroup (KilledAtBirth): then it
  // joins through cgroup.procs.
  for (int attempt = 0; attempt < 2; attempt++) {
    plan->report->ran = 0;
    __atomic_store_n(plan->park_word, kParkSettingUp, __ATOMIC_RELEASE);
    // No CLONE_VFORK: it waits parked, and we go on. CLEARTID tells us when it no longer uses
    // our memory (its exec or exit), and wakes the wait below should it die during the set-up.
    CloneArgs args = ChildCloneArgs(CLONE_VM | CLONE_PIDFD | CLONE_CHILD_CLEARTID,
                                    procs_fd >= 0 ? -1 : cgroup_fd, &result.pidfd, SIGCHLD, stack, plan);
    args.child_tid = reinterpret_cast<uintptr_t>(plan->park_word);
    long pid = triggerd_clone3(&args, sizeof(args), SpawnChildMain, plan);
    result.used = CloneMethod::kClone3;
    if (pid < 0) {
      __atomic_store_n(plan->park_word, 0, __ATOMIC_RELEASE);
      result.err = static_cast<int>(-pid);
      result.syscall = "clone3";
      break;
    }
    result.pid = static_cast<pid_t>(pid);
    // Until it is parked (or gone) the child works on our memory: wait, as a vfork parent would.
    // A child still in its set-up after 2 s is killed (a stopped one would hold this thread).
    int waits = 0;
    for (;;) {
      int32_t state = __atomic_load_n(plan->park_word, __ATOMIC_ACQUIRE);
      if (state != kParkSettingUp) break;
      struct timespec timeout = {0, 200 * 1000 * 1000};
      syscall(SYS_futex, plan->park_word, FUTEX_WAIT, kParkSettingUp, &timeout, nullptr, 0);
      if (++waits == 10) syscall(SYS_pidfd_send_signal, result.pidfd, SIGKILL, nullptr, 0);
    }
    if (__atomic_load_n(plan->park_word, __ATOMIC_ACQUIRE) != 0 || plan->report->step >= 0) break;
    if (attempt == 0 && cgroup_fd >= 0 && KilledAtBirth(plan, &result)) {
      procs_fd = OpenCgroupProcs(cgroup_fd);
      if (procs_fd < 0) {
        result.err = errno;
        result.syscall = "open";
        result.cgroup_step = true;
        break;
      }
      plan->cgroup_procs_fd = procs_fd;
      result.cgroup_rejoined = true;
      continue;
    }
    // Gone in its set-up without a report: killed.
    result.err = EINTR;
    result.syscall = "clone3";
    break;
  }
  pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  if (procs_fd >= 0) close(procs_fd);
  return result;
#else
  (void)stack;
  (void)cgroup_fd;
  result.err = ENOSYS;
  result.syscall = "clone3";
  return result;
#endif
}

int LayOutChildFds(std::vector<FdSpec>* fds, int null_fd, std::vector<int>* gap_fds) {
  int max_child_fd = 2;
  for (FdSpec& fd : *fds) {
    if (fd.parent_fd < 0) fd.parent_fd = null_fd;
    max_child_fd = std::max(max_child_fd, fd.child_fd);
  }
  std::vector<bool> mapped(max_child_fd + 1, false);
  for (const FdSpec& fd : *fds) mapped[fd.child_fd] = true;
  for (int fd = 0; fd <= max_child_fd; fd++) {
    if (!mapped[fd]) gap_fds->push_back(fd);
  }
  return max_child_fd;
}

unsigned ChildCloseLimit() {
  struct rlimit nofile = {};
  getrlimit(RLIMIT_NOFILE, &nofile);
  return nofile.rlim_cur == RLIM_INFINITY || nofile.rlim_cur > (1U << 20)
             ? (1U << 20)
             : static_cast<unsigned>(nofile.rlim_cur);
}

uint64_t IgnoredSignals() {
  uint64_t ignored = (1ULL << (SIGPIPE - 1)) | (1ULL << (SIGXFSZ - 1));
  for (int sig = 1; sig <= 64; sig++) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    // rt_sigaction directly: glibc refuses its own reserved signals.
    KernelSigaction old = {};
    if (syscall(SYS_rt_sigaction, sig, nullptr, &old, sizeof(uint64_t)) == 0 &&
        old.handler == SIG_IGN) {
      ignored |= 1ULL << (sig - 1);
    }
  }
  return ignored;
}

int ProbeLastCapability() {
  int cap = 0;
  while (cap < 63 && prctl(PR_CAPBSET_READ, cap + 1, 0, 0, 0) >= 0) cap++;
  return cap;
}

void FillChildPlanFromSpec(const PlanSpec& spec, const std::string& oom_text, int last_cap,
                           ChildPlan* plan) {
  plan->path = spec.path.c_str();
  plan->cwd = spec.has_cwd ? spec.cwd.c_str() : nullptr;
  plan->cwd_optional = spec.cwd_optional;
  plan->set_uid = spec.has_uid;
  plan->uid = spec.uid;
  plan->set_gid = spec.has_gid;
  plan->gid = spec.gid;
  plan->set_groups = spec.has_groups;
  plan->groups = spec.groups.data();
  plan->group_count = spec.groups.size();
  plan->set_umask = spec.has_umask;
  plan->umask = spec.umask;
  plan->set_nice = spec.has_nice;
  plan->nice = spec.nice;
  plan->oom_text = spec.has_oom_score_adjust ? oom_text.c_str() : nullptr;
  plan->oom_length = oom_text.size();
  plan->rlimits = spec.rlimits.data();
  plan->rlimit_count = spec.rlimits.size();
  plan->new_session = spec.new_session;
  plan->no_new_privileges = spec.no_new_privileges;
  plan->set_bounding_set = spec.has_bounding_set;
  plan->bounding_set = spec.bounding_set;
  plan->last_cap = last_cap;
  plan->set_ambient = spec.has_ambient;
  plan->ambient = spec.ambient;
}

}  // namespace triggerd
