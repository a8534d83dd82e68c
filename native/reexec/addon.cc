// Entry point of triggerd_reexec.node: the few process calls a re-exec and a crash recovery need
// that Node has no binding for. execve(2) of the daemon itself (same pid, so its children stay
// its children), FD_CLOEXEC on the fds carried across it, and pidfds for processes found again
// after the exec or after a crash: pidfd_open(2), pidfd_getfd(2) (a listening socket taken back
// from the service that holds it), and a non-blocking waitid(P_PIDFD). Each call is one short
// syscall; nothing is parsed here (see src/native/reexec-addon.ts).
#include <napi.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "../common/pidfd_compat.h"
#include "../netlink/system_error.h"


namespace triggerd {

// <linux/pidfd.h>'s struct pidfd_info (its first version, 64 bytes) and PIDFD_GET_INFO, spelled
// out: the build machine's headers may predate them (Linux 6.13; exit_code since 6.15).
struct KernelPidfdInfo {
  uint64_t mask;
  uint64_t cgroupid;
  uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  int32_t exit_code;
};
static_assert(sizeof(KernelPidfdInfo) == 64, "PIDFD_INFO_SIZE_VER0");
constexpr unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, KernelPidfdInfo);
constexpr uint64_t kPidfdInfoExit = 1ULL << 3;

namespace {

std::string StringArgument(Napi::Env env, const Napi::Value& value, const char* name) {
  if (!value.IsString()) {
    throw MakeArgumentError(env, std::string("The \"") + name + "\" argument must be a string");
  }
  std::string text = value.As<Napi::String>().Utf8Value();
  if (std::memchr(text.data(), '\0', text.size()) != nullptr) {
    throw MakeArgumentError(env,
                            std::string("The \"") + name + "\" argument must not contain NUL",
                            "ERR_INVALID_ARG_VALUE");
  }
  return text;
}

std::vector<std::string> StringArrayArgument(Napi::Env env, const Napi::Value& value,
                                             const char* name) {
  if (!value.IsArray()) {
    throw MakeArgumentError(env, std::string("The \"") + name + "\" argument must be an array");
  }
  Napi::Array array = value.As<Napi::Array>();
  std::vector<std::string> out;
  out.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); i++) out.push_back(StringArgument(env, array[i], name));
  return out;
}

int FdArgument(Napi::Env env, const Napi::Value& value, const char* name) {
  return static_cast<int>(IntegerArgument(env, value, name, 0, INT32_MAX));
}

}  // namespace

class ReexecAddon : public Napi::Addon<ReexecAddon> {
 public:
  ReexecAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports,
                {
                    InstanceMethod<&ReexecAddon::Execve>("execve", napi_enumerable),
                    InstanceMethod<&ReexecAddon::SetCloseOnExec>("setCloseOnExec", napi_enumerable),
                    InstanceMethod<&ReexecAddon::CloseOnExec>("closeOnExec", napi_enumerable),
                    InstanceMethod<&ReexecAddon::PidfdOpen>("pidfdOpen", napi_enumerable),
                    InstanceMethod<&ReexecAddon::PidfdGetfd>("pidfdGetfd", napi_enumerable),
                    InstanceMethod<&ReexecAddon::WaitPidfd>("waitPidfd", napi_enumerable),
                    InstanceMethod<&ReexecAddon::PidfdExitInfo>("pidfdExitInfo", napi_enumerable),
                    InstanceMethod<&ReexecAddon::CloseFd>("closeFd", napi_enumerable),
                });
  }

 private:
  // execve(file: string, argv: string[], env: string[]): never returns on success; throws the
  // system error otherwise (the caller is still running and must undo what it prepared).
  // Signals blocked by this thread stay blocked in the new image (execve keeps the mask): they
  // are unblocked first, as a fresh process expects.
  Napi::Value Execve(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string file = StringArgument(env, info[0], "file");
    if (file.empty()) throw MakeArgumentError(env, "The \"file\" argument must not be empty",
                                              "ERR_INVALID_ARG_VALUE");
    std::vector<std::string> args = StringArrayArgument(env, info[1], "argv");
    std::vector<std::string> vars = StringArrayArgument(env, info[2], "env");
    if (args.empty()) throw MakeArgumentError(env, "The \"argv\" argument must not be empty",
                                              "ERR_INVALID_ARG_VALUE");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (auto& v : vars) envp.push_back(v.data());
    envp.push_back(nullptr);
    sigset_t all, old;
    sigemptyset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    execve(file.c_str(), argv.data(), envp.data());
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    Napi::Error error = MakeSystemError(env, err, "execve");
    error.Set("path", Napi::String::New(env, file));
    throw error;
  }

  // setCloseOnExec(fd: number, on: boolean): undefined
  Napi::Value SetCloseOnExec(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = FdArgument(env, info[0], "fd");
    if (!info[1].IsBoolean()) throw MakeArgumentError(env, "The \"on\" argument must be a boolean");
    bool on = info[1].As<Napi::Boolean>().Value();
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) throw MakeSystemError(env, errno, "fcntl");
    int next = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    if (next != flags && fcntl(fd, F_SETFD, next) != 0) throw MakeSystemError(env, errno, "fcntl");
    return env.Undefined();
  }

  // closeOnExec(fd: number): boolean (EBADF for an fd that is not open)
  Napi::Value CloseOnExec(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = FdArgument(env, info[0], "fd");
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) throw MakeSystemError(env, errno, "fcntl");
    return Napi::Boolean::New(env, (flags & FD_CLOEXEC) != 0);
  }

  // pidfdOpen(pid: number): number (close-on-exec; ESRCH when there is no such process)
  Napi::Value PidfdOpen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int pid = static_cast<int>(IntegerArgument(env, info[0], "pid", 1, INT32_MAX));
    long fd = syscall(SYS_pidfd_open, pid, 0);
    if (fd < 0) throw MakeSystemError(env, errno, "pidfd_open");
    return Napi::Number::New(env, static_cast<double>(fd));
  }

  // pidfdGetfd(pidfd: number, targetFd: number): number — a duplicate of the process's fd
  // (close-on-exec), as SCM_RIGHTS would give it. Needs ptrace access to the process.
  Napi::Value PidfdGetfd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int pidfd = FdArgument(env, info[0], "pidfd");
    int target = FdArgument(env, info[1], "targetFd");
    long fd = syscall(SYS_pidfd_getfd, pidfd, target, 0);
    if (fd < 0) throw MakeSystemError(env, errno, "pidfd_getfd");
    return Napi::Number::New(env, static_cast<double>(fd));
  }

  // waitPidfd(pidfd: number): { code, status } | null — waitid(P_PIDFD, WEXITED|WNOHANG|__WALL):
  // reaps the process if it is our child and has exited; null while it runs. ECHILD when it is
  // not our child (adopted after a crash: its exit shows as the pidfd turning readable only).
  Napi::Value WaitPidfd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int pidfd = FdArgument(env, info[0], "pidfd");
    siginfo_t si;
    std::memset(&si, 0, sizeof si);
    int rc;
    do {
      rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &si,
                  WEXITED | WNOHANG | __WALL);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) throw MakeSystemError(env, errno, "waitid");
    if (si.si_pid == 0) return env.Null();
    Napi::Object out = Napi::Object::New(env);
    const char* code = si.si_code == CLD_EXITED   ? "exited"
                       : si.si_code == CLD_DUMPED ? "dumped"
                                                  : "killed";
    out.Set("pid", Napi::Number::New(env, si.si_pid));
    out.Set("code", Napi::String::New(env, code));
    out.Set("status", Napi::Number::New(env, si.si_status));
    return out;
  }

  // pidfdExitInfo(pidfd: number): { code, status } | null — the exit status the kernel keeps
  // for a pidfd once its process was reaped, by whoever reaped it (ioctl PIDFD_GET_INFO with
  // PIDFD_INFO_EXIT, Linux 6.15): the status of a process reparented to init while the daemon was
  // down. null while it is not reaped yet, and on kernels without it.
  Napi::Value PidfdExitInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int pidfd = FdArgument(env, info[0], "pidfd");
    KernelPidfdInfo kinfo;
    std::memset(&kinfo, 0, sizeof kinfo);
    kinfo.mask = kPidfdInfoExit;
    if (ioctl(pidfd, kPidfdGetInfo, &kinfo) != 0) {
      // ENOTTY/EINVAL: no PIDFD_GET_INFO (before 6.13) or not a pidfd; ESRCH: reaped, without
      // exit information (before 6.15).
      if (errno == ENOTTY || errno == EINVAL || errno == ESRCH) return env.Null();
      throw MakeSystemError(env, errno, "ioctl");
    }
    if ((kinfo.mask & kPidfdInfoExit) == 0) return env.Null();
    int status = kinfo.exit_code;
    Napi::Object out = Napi::Object::New(env);
    const char* code = WIFEXITED(status) ? "exited" : WCOREDUMP(status) ? "dumped" : "killed";
    out.Set("code", Napi::String::New(env, code));
    out.Set("status", Napi::Number::New(env, WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status)));
    return out;
  }

  // closeFd(fd: number): undefined (EBADF when it is not open)
  Napi::Value CloseFd(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int fd = FdArgument(env, info[0], "fd");
    if (close(fd) != 0 && errno != EINTR) throw MakeSystemError(env, errno, "close");
    return env.Undefined();
  }
};

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::ReexecAddon;
NODE_API_ADDON(ReexecAddon)
