// The child side of spawn(): a vfork-style clone (CLONE_VM | CLONE_VFORK) whose child runs on a
// stack of its own, applies a ChildPlan with raw system calls only, and execs. The parent is
// suspended until the child has exec'd or exited, so the plan's memory stays valid and the
// child's failure report (written into shared memory) is complete when clone returns.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "spawn_plan.h"

namespace triggerd {

// Which system call a failure came from, for the error's `syscall` property.
enum SyscallIndex : int {
  kSysNone = 0,
  kSysWrite,
  kSysUnshare,
  kSysMount,
  kSysMountSetattr,
  kSysStatx,
  kSysSocket,
  kSysIoctl,
  kSysOpenTree,
  kSysMoveMount,
  kSysFcntl,
  kSysDup3,
  kSysClose,
  kSysCloseRange,
  kSysPrlimit,
  kSysOpen,
  kSysSetpriority,
  kSysSetsid,
  kSysSetgroups,
  kSysSetresgid,
  kSysSetresuid,
  kSysPrctl,
  kSysChdir,
  kSysCapget,
  kSysCapset,
  kSysExecve,
  kSysCount,
};

extern const char* const kSyscallNames[kSysCount];

// Written by the child just before _exit(127); left at step -1 when exec succeeded.
struct ChildReport {
  int step;
  int err;
  int syscall;
  int detail;  // mount step index, child fd, ...: says which item failed
  // Set by the child first thing: a child gone without it never ran (killed at its birth).
  int ran;
};

struct ChildMount {
  MountKind kind;
  const char* source;
  const char* target;
  const char* data;
  bool read_only;
  bool recursive;
  bool optional;
};

// Plain pointers and numbers into storage the parent owns. The child writes only to `report`,
// `fd_scratch`, `submount_scratch` and the LISTEN_PID digits.
struct ChildPlan {
  const char* path;
  char* const* argv;
  char* const* envp;
  const char* cwd;  // nullptr: keep
  bool cwd_optional;
  bool set_uid;
  uid_t uid;
  bool set_gid;
  gid_t gid;
  bool set_groups;
  const gid_t* groups;
  size_t group_count;
  bool set_umask;
  mode_t umask;
  bool set_nice;
  int nice;
  const char* oom_text;  // nullptr: keep
  size_t oom_length;
  const RlimitSpec* rlimits;
  size_t rlimit_count;
  const FdSpec* fds;  // parent_fd already resolved (the /dev/null fd instead of -1)
  size_t fd_count;
  int* fd_scratch;    // fd_count slots
  const int* gap_fds;  // fds below max_child_fd that the child must not keep
  size_t gap_count;
  int max_child_fd;
  int dup_base;       // above every child fd: where the temporary copies go
  unsigned close_limit;  // upper bound for the close() loop when close_range is missing; 0: the
                         // child takes RLIMIT_NOFILE (at most 2^20) then
  bool new_session;
  bool no_new_privileges;
  bool set_bounding_set;
  uint64_t bounding_set;
  int last_cap;
  bool set_ambient;
  uint64_t ambient;
  bool mount_namespace;
  const ChildMount* mounts;
  size_t mount_count;
  const char* inaccessible_directory;  // nullptr: use a mode-000 tmpfs for directories
  const char* inaccessible_file;       // nullptr: non-directories cannot be made inaccessible
  bool private_network;
  bool private_sysfs;
  const char* const* sysfs_submounts;
  size_t sysfs_submount_count;
  int* submount_scratch;  // sysfs_submount_count slots
  int cgroup_procs_fd;    // >= 0: the child joins the cgroup by writing "0" to it
  char* listen_pid_digits;  // nullptr, or 24 writable bytes after "LISTEN_PID="
  ChildReport* report;
  // Ask clone3 for CLONE_CLEAR_SIGHAND (Linux 5.5): the kernel puts every handled signal back to
  // SIG_DFL, and the child resets only `ignored_signals` (bit n-1: signal n; SIG_IGN survives
  // both the flag and exec) instead of 62 rt_sigaction calls. The caller's snapshot of what is
  // ignored must be current. false: the child resets every signal itself.
  bool clear_handlers;
  uint64_t ignored_signals;
  bool handlers_cleared;  // set by LaunchChild: the clone that ran did clear them
  // >= 0: a parked child (LaunchParkedChild): after the set-up it waits for one byte on this
  // child fd, then execs. -1: it execs at once.
  int park_go_fd = -1;
  // The parked child's state word (kParkSettingUp, kParkParked; 0 once it exec'd or exited).
  int32_t* park_word = nullptr;
};

// ChildPlan::park_word. The kernel writes 0 (CLONE_CHILD_CLEARTID) once the child has exec'd or
// exited: from then on it no longer uses the parent's memory (its stack, the plan).
constexpr int32_t kParkSettingUp = 1;
constexpr int32_t kParkParked = 2;

// kClone3NoRejoin (tests only): clone3, and a child killed at its birth in its cgroup is not
// cloned again (what a spawn does with a child that died before its exec).
enum class CloneMethod { kAuto, kClone3, kClone, kClone3NoRejoin };

// A reusable stack for the child (mmap'd once per environment, with a guard page).
class ChildStack {
 public:
  ChildStack() = default;
  ~ChildStack();
  ChildStack(const ChildStack&) = delete;
  ChildStack& operator=(const ChildStack&) = delete;
  // Returns 0 or an errno from mmap/mprotect.
  int Ensure();
  void* base() const { return base_; }
  size_t size() const { return size_; }

 private:
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  void* base_ = nullptr;
  size_t size_ = 0;
};

struct LaunchResult {
  int err = 0;                   // 0, or the errno of the parent's failed call
  const char* syscall = nullptr;
  bool cgroup_step = false;      // the parent's failure belongs to step CGROUP
  pid_t pid = -1;
  int pidfd = -1;
  CloneMethod used = CloneMethod::kAuto;
  // The child cloned into the cgroup was killed before it ran, and the clone was made again
  // with the child joining through cgroup.procs (KilledAtBirth in spawn_child.cc).
  bool cgroup_rejoined = false;
};

// Clones the child with every signal blocked in the calling thread (any thread: only the
// calling thread is suspended until the child has exec'd). With `cgroup_fd` >= 0 it asks clone3
// to start the child in that cgroup, and when that fails it tries again with the child writing
// to cgroup.procs itself (ChildPlan::cgroup_procs_fd, opened here on demand). `exit_signal` is
// SIGCHLD, or 0 for a child that only waitid(..., __WALL) sees (see SpawnAddon's quiet
// children). `clone3_missing` is remembered by the caller across calls.
LaunchResult LaunchChild(ChildPlan* plan, const ChildStack& stack, int cgroup_fd,
                         CloneMethod method, std::atomic<bool>* clone3_missing, int exit_signal);

// A parked child: cloned with CLONE_VM but without CLONE_VFORK, on `stack` (its own, kept until
// *plan->park_word is 0), it makes the whole set-up and then waits for its go byte; this returns
// once it waits (or failed: report.step, or err when it died otherwise; a dead child is left
// unreaped). Sharing our memory, its exec then only drops its reference to it: no teardown of an
// address space of its own (bench/path-latency: an exec ~60-80 µs shorter than from a stub
// process). clone3 only (ENOSYS otherwise); no cgroup.procs fallback.
LaunchResult LaunchParkedChild(ChildPlan* plan, const ChildStack& stack, int cgroup_fd);

// Parent side, shared by the spawn addon (per spawn) and acceptSpawn (once per listening
// socket): the parts of a ChildPlan both build the same way.
//
// The child's fd layout: a parent fd of -1 becomes `null_fd`; returns the highest child fd, and
// `gap_fds` gets the ones below it that no FdSpec maps (the child closes those).
int LayOutChildFds(std::vector<FdSpec>* fds, int null_fd, std::vector<int>* gap_fds);
// How far the child's close_range reaches: RLIMIT_NOFILE, at most 2^20 (a huge limit must not
// make the child walk a million fds).
unsigned ChildCloseLimit();
// The highest capability this kernel knows (CAP_LAST_CAP), without reading /proc.
int ProbeLastCapability();
// ChildPlan::ignored_signals for the calling process now: bit n-1 for each signal n whose
// disposition is SIG_IGN, and SIGPIPE and SIGXFSZ always (Node ignores them at start-up).
uint64_t IgnoredSignals();
// The ChildPlan fields that come straight from the spec: path, cwd, identity, umask, nice, OOM
// score (`oom_text`, kept alive by the caller), limits and privileges. Argv, environment, fds,
// mounts and the cgroup each spawner sets from its own storage.
void FillChildPlanFromSpec(const PlanSpec& spec, const std::string& oom_text, int last_cap,
                           ChildPlan* plan);

}  // namespace triggerd
