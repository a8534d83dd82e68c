// triggerd_park: an armed path unit's job, spawned before its change comes and parked here
// (src/core/path-armed-start.ts). The daemon spawned it with the job's whole plan applied: its
// session, group, fds, limits and environment. It waits for one byte on GO_FD and then execs the
// job's program, so the change's wake-up is one write instead of a clone, a setsid() (a new
// autogroup: ~40 µs) and the rest of the child's set-up.
//
//   triggerd_park GO_FD PATH ARGV0 [ARG...]
//
// EOF on GO_FD (the arm was dropped, or the daemon is gone) ends it quietly. An exec that fails
// ends it as systemd's does: exit status 203 (EXEC), with the reason on stderr (the job's log).
//
// No libc, no start-up code, one page of text: the exec that replaces it tears down its memory
// first, and a static glibc's ~170 mapped pages took ~100 µs of that exec (bench/path-latency's
// profile). Nothing of the job's environment (LD_PRELOAD, LD_LIBRARY_PATH) can load into it.
#include <asm/unistd.h>
#include <linux/errno.h>

typedef long word;

#if defined(__x86_64__)
__asm__(
    ".text\n"
    ".global _start\n"
    "_start:\n"
    "  xor %rbp, %rbp\n"
    "  mov %rsp, %rdi\n"
    "  and $-16, %rsp\n"
    "  call park_main\n"
    "  hlt\n");

static word sys3(word nr, word a, word b, word c) {
  word ret;
  __asm__ volatile("syscall" : "=a"(ret) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return ret;
}
#elif defined(__aarch64__)
__asm__(
    ".text\n"
    ".global _start\n"
    "_start:\n"
    "  mov x29, #0\n"
    "  mov x30, #0\n"
    "  mov x0, sp\n"
    "  bl park_main\n"
    "  brk #0\n");

static word sys3(word nr, word a, word b, word c) {
  register word x8 __asm__("x8") = nr;
  register word x0 __asm__("x0") = a;
  register word x1 __asm__("x1") = b;
  register word x2 __asm__("x2") = c;
  __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2) : "memory");
  return x0;
}
#else
#error "triggerd_park: add this architecture's _start and system call"
#endif

enum { kExitUsage = 2, kExitExec = 203 };

static void Exit(int status) {
  for (;;) sys3(__NR_exit_group, status, 0, 0);
}

static word Length(const char* s) {
  word n = 0;
  while (s[n] != '\0') n++;
  return n;
}

static void Say(const char* s) { sys3(__NR_write, 2, (word)s, Length(s)); }

static const char* ErrorText(word err) {
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

// Called from _start with the initial stack: argc, argv[], NULL, envp[], NULL.
__attribute__((used)) void park_main(word* stack) {
  word argc = stack[0];
  char** argv = (char**)(stack + 1);
  char** envp = argv + argc + 1;
  if (argc < 4) {
    Say("triggerd_park: usage: triggerd_park GO_FD PATH ARGV0 [ARG...]\n");
    Exit(kExitUsage);
  }
  word fd = 0;
  const char* digit = argv[1];
  if (*digit == '\0') Exit(kExitUsage);
  for (; *digit != '\0'; digit++) {
    if (*digit < '0' || *digit > '9' || fd > 65535) Exit(kExitUsage);
    fd = fd * 10 + (*digit - '0');
  }
  char go;
  word n;
  do {
    n = sys3(__NR_read, fd, (word)&go, 1);
  } while (n == -EINTR);
  if (n != 1) Exit(0);
  sys3(__NR_close, fd, 0, 0);
  word err = -sys3(__NR_execve, (word)argv[2], (word)(argv + 3), (word)envp);
  Say("Failed to execute ");
  Say(argv[2]);
  Say(": ");
  Say(ErrorText(err));
  Say("\n");
  Exit(kExitExec);
}
