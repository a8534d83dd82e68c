// Entry point of triggerd_spawn.node: spawn(), the child-exit watcher and the small process
// and fd calls around them (see src/native/spawn-addon.ts for the JavaScript contract).
#include "addon.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../common/instance_tag.h"
#include "../common/native_launch.h"
#include "../common/pidfd_compat.h"
#include "../netlink/system_error.h"
#include "child_watcher.h"
#include "spawn_plan.h"


namespace triggerd {

namespace {

class FdGuard {
 public:
  explicit FdGuard(int fd = -1) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }
  void reset(int fd) {
    if (fd_ >= 0) close(fd_);
    fd_ = fd;
  }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// "failed at step CHDIR: No such file or directory", with Node's code/errno/syscall, the step
// and, where one applies, the path.
Napi::Error MakeStepError(Napi::Env env, int step, int err, const char* syscall,
                          const std::string& path) {
  char name[64];
  char text[256];
  uv_err_name_r(-err, name, sizeof(name));
  // libuv names only the errors it uses itself (not ENOEXEC, ENOTDIR is fine, ...); glibc knows all.
  const char* glibc_name = strerrorname_np(err);
  if (strncmp(name, "Unknown", 7) == 0 && glibc_name != nullptr) snprintf(name, sizeof(name), "%s", glibc_name);
  const char* description = strerror_r(err, text, sizeof(text));
  std::string message = std::string("failed at step ") + kExecStepNames[step] + ": " + description;
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("code", Napi::String::New(env, name));
  error.Set("syscall", Napi::String::New(env, syscall));
  error.Set("step", Napi::String::New(env, kExecStepNames[step]));
  if (!path.empty()) error.Set("path", Napi::String::New(env, path));
  return error;
}

// The child's copy of a failed spawn is a zombie by now or about to be: reap it here, so no
// exit is reported for a spawn that threw.
void ReapFailedChild(pid_t pid, int pidfd) {
  siginfo_t info;
  int rc;
  do {
    rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED | __WALL);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno == EINVAL) {  // no P_PIDFD (before Linux 5.4)
    while (waitpid(pid, nullptr, __WALL) < 0 && errno == EINTR) {
    }
  }
}

}  // namespace

SpawnAddon::SpawnAddon(Napi::Env env, Napi::Object exports)
    : plan_keys_(std::make_unique<PlanKeys>(env)) {
  last_cap_ = ProbeLastCapability();
  // Read once: Node ignores SIGPIPE (and SIGXFSZ) at start-up and nothing in the daemon ignores a
  // signal later (JavaScript cannot: removing a listener restores SIG_DFL).
  ignored_signals_ = IgnoredSignals();
  Napi::Array steps = Napi::Array::New(env, kStepCount);
  for (uint32_t i = 0; i < kStepCount; i++) steps.Set(i, Napi::String::New(env, kExecStepNames[i]));
  DefineAddon(exports,
              {
                  InstanceMethod<&SpawnAddon::Spawn>("spawn", napi_enumerable),
                  InstanceMethod<&SpawnAddon::SpawnAsync>("spawnAsync", napi_enumerable),
                  InstanceMethod<&SpawnAddon::Prepare>("prepare", napi_enumerable),
                  InstanceMethod<&SpawnAddon::SetSubreaper>("setSubreaper", napi_enumerable),
                  InstanceMethod<&SpawnAddon::IsSubreaper>("isSubreaper", napi_enumerable),
                  InstanceMethod<&SpawnAddon::WatchChildren>("watchChildren", napi_enumerable),
                  InstanceMethod<&SpawnAddon::PidfdSendSignal>("pidfdSendSignal",
                                                               napi_enumerable),
                  InstanceMethod<&SpawnAddon::Kill>("kill", napi_enumerable),
                  InstanceMethod<&SpawnAddon::CloseFd>("closeFd", napi_enumerable),
                  InstanceMethod<&SpawnAddon::Pipe>("pipe", napi_enumerable),
                  InstanceMethod<&SpawnAddon::ForgetCgroup>("forgetCgroup", napi_enumerable),
                  InstanceMethod<&SpawnAddon::SetCloneMethodForTesting>(
                      "setCloneMethodForTesting", napi_enumerable),
                  InstanceValue("execSteps", steps, napi_enumerable),
              });
}


bool SpawnAddon::ForgetChild(pid_t pid, std::vector<int>* close_later) {
  auto found = children_.find(pid);
  if (found == children_.end()) return false;
  if (watcher_ != nullptr) watcher_->UnwatchPidfd(pid);
  if (found->second >= 0) {
    if (close_later != nullptr)
      close_later->push_back(found->second);
    else
      close(found->second);
  }
  children_.erase(found);
  return true;
}

void SpawnAddon::WatcherClosing(ChildWatcher* watcher) {
  if (watcher_ == watcher) watcher_ = nullptr;
}

ChildWatcher* SpawnAddon::WatcherById(uint64_t id) const {
  return watcher_ != nullptr && watcher_->id() == id ? watcher_ : nullptr;
}

// Everything one spawn needs, built on the JavaScript thread before the clone (the child must not
// allocate) and owned until the spawn is over. Heap-allocated once and never moved: `plan` points
// into the other members.
struct PreparedSpawn {
  PlanSpec spec;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::string listen_pid_slot;
  std::string oom_text;
  std::vector<ChildMount> mounts;
  std::vector<const char*> submounts;
  std::vector<int> submount_scratch;
  std::vector<FdSpec> fds;
  std::vector<int> fd_scratch;
  std::vector<int> gap_fds;
  // Opened for this spawn (spawnAsync), or left empty when the addon's SpawnFdCache holds them.
  FdGuard null_fd;
  FdGuard cgroup_fd;
  int cgroup_fd_in_use = -1;
  bool cgroup_fd_held = false;  // from the cache, held from an earlier spawn
  ChildReport report = {-1, 0, 0, -1, 0};
  ChildPlan plan = {};
  LaunchResult launched;
  // A parked child's own stack, and its state word (ChildPlan::park_word): both stay until the
  // kernel has set the word to 0 (SpawnAddon::BuryParked).
  std::unique_ptr<ChildStack> park_stack;
  int32_t park_word = 0;
  // spawnAsync's `handOver`: the caller's fds, closed once the child has its copies.
  std::vector<int> handed_over;

  void CloseHandedOver() {
    for (int fd : handed_over) close(fd);
    handed_over.clear();
  }
  ~PreparedSpawn() { CloseHandedOver(); }
};

namespace {

constexpr char kListenPid[] = "LISTEN_PID=";

// prepare()'s `park`: the go pipe's read end a parked child waits on.
struct ParkSpec {
  int go_read_fd;
};

// `options.<name>` of spawn(), launch() (yieldAfter) and prepare() (park): `options` undefined,
// or an object whose <name> is a boolean or absent (false).
bool BooleanOption(Napi::Env env, Napi::Value options, const char* name) {
  if (options.IsUndefined()) return false;
  if (!options.IsObject()) throw MakeArgumentError(env, "The \"options\" argument must be an object");
  Napi::Value value = options.As<Napi::Object>().Get(name);
  if (!value.IsUndefined() && !value.IsBoolean()) {
    throw MakeArgumentError(env, std::string("The \"options.") + name + "\" property must be a boolean");
  }
  return value.IsBoolean() && value.As<Napi::Boolean>().Value();
}

bool YieldAfterOption(Napi::Env env, Napi::Value options) {
  return BooleanOption(env, options, "yieldAfter");
}

// Why BindFds failed: errno from open() of /dev/null or of the cgroup (0: it did not).
struct BindFailure {
  int err = 0;
  bool cgroup = false;
};

// Opens /dev/null and the cgroup (from `cache`, or for this spawn alone) and lays out the child's
// fds with them. No JavaScript: an armed launch binds again just before its clone, so fd numbers
// taken long before are never trusted.
BindFailure BindFds(PreparedSpawn* prepared, SpawnFdCache* cache) {
  PreparedSpawn& p = *prepared;
  const PlanSpec& spec = p.spec;
  bool needs_null = std::any_of(spec.fds.begin(), spec.fds.end(),
                                [](const FdSpec& fd) { return fd.parent_fd < 0; });
  int null_fd = -1;
  if (needs_null) {
    if (cache != nullptr) {
      null_fd = cache->NullFd();
    } else {
      if (p.null_fd.get() < 0) p.null_fd.reset(open("/dev/null", O_RDWR | O_CLOEXEC));
      null_fd = p.null_fd.get();
    }
    if (null_fd < 0) return {errno, false};
  }
  if (spec.has_cgroup) {
    if (cache != nullptr) {
      p.cgroup_fd_in_use = cache->CgroupFd(spec.cgroup, &p.cgroup_fd_held);
    } else {
      p.cgroup_fd.reset(open(spec.cgroup.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
      p.cgroup_fd_in_use = p.cgroup_fd.get();
    }
    if (p.cgroup_fd_in_use < 0) return {errno, true};
  }

  p.fds = spec.fds;
  p.gap_fds.clear();
  int max_child_fd = LayOutChildFds(&p.fds, null_fd, &p.gap_fds);
  // The child's temporary copies only have to stay clear of the targets (F_DUPFD never takes an
  // open fd); parent fd numbers do not matter, and a bogus huge one must not push the base past
  // RLIMIT_NOFILE.
  p.fd_scratch.assign(p.fds.size(), -1);
  ChildPlan& plan = p.plan;
  plan.fds = p.fds.data();
  plan.fd_count = p.fds.size();
  plan.fd_scratch = p.fd_scratch.data();
  plan.gap_fds = p.gap_fds.data();
  plan.gap_count = p.gap_fds.size();
  plan.max_child_fd = max_child_fd;
  plan.dup_base = max_child_fd + 1;
  return {};
}

Napi::Error BindError(Napi::Env env, const PreparedSpawn& p, const BindFailure& failure) {
  if (failure.cgroup) return MakeStepError(env, kStepCgroup, failure.err, "open", p.spec.cgroup);
  Napi::Error error = MakeSystemError(env, failure.err, "open");
  error.Set("path", Napi::String::New(env, "/dev/null"));
  return error;
}

// Reads and checks the plan (TypeError), opens /dev/null and the cgroup (system errors) and lays
// out the child's view of it. With `cache` (spawn()) the two fds come from it and stay open
// after the spawn; without (spawnAsync(), whose clone runs on another thread while JavaScript
// may forget a cgroup) they are opened for this spawn and closed with it.
//
// A parked spawn (`park`): the go pipe's read end is the child's fd after the plan's last.
std::unique_ptr<PreparedSpawn> PrepareSpawn(Napi::Env env, Napi::Value value, int last_cap,
                                            const PlanKeys& keys, uint64_t ignored_signals,
                                            SpawnFdCache* cache, bool bind = true,
                                            const ParkSpec* park = nullptr) {
  auto prepared = std::make_unique<PreparedSpawn>();
  PreparedSpawn& p = *prepared;
  p.spec = ReadPlan(env, value, keys);
  PlanSpec& spec = p.spec;
  int park_go_fd = -1;
  if (park != nullptr) {
    park_go_fd = 2;
    for (const FdSpec& fd : spec.fds) park_go_fd = std::max(park_go_fd, fd.child_fd);
    park_go_fd++;
    spec.fds.push_back({park_go_fd, park->go_read_fd, NonBlockMode::kKeep});
  }

  p.argv.reserve(spec.argv.size() + 1);
  for (std::string& arg : spec.argv) p.argv.push_back(&arg[0]);
  p.argv.push_back(nullptr);

  p.envp.reserve(spec.env.size() + 2);
  for (std::string& entry : spec.env) {
    if (spec.set_listen_pid && entry.compare(0, sizeof(kListenPid) - 1, kListenPid) == 0) continue;
    p.envp.push_back(&entry[0]);
  }
  if (spec.set_listen_pid) {
    p.listen_pid_slot = std::string(kListenPid) + std::string(24, '\0');
    p.envp.push_back(&p.listen_pid_slot[0]);
  }
  p.envp.push_back(nullptr);

  p.mounts.reserve(spec.mounts.size());
  for (const MountSpec& mount : spec.mounts) {
    p.mounts.push_back({mount.kind, mount.source.c_str(), mount.target.c_str(), mount.data.c_str(),
                        mount.read_only, mount.recursive, mount.optional});
  }
  for (const std::string& path : spec.sysfs_submounts) p.submounts.push_back(path.c_str());
  p.submount_scratch.assign(p.submounts.size(), -1);

  if (spec.has_oom_score_adjust) p.oom_text = std::to_string(spec.oom_score_adjust);

  if (bind) {
    BindFailure failure = BindFds(&p, cache);
    if (failure.err != 0) throw BindError(env, p, failure);
  }

  ChildPlan& plan = p.plan;
  FillChildPlanFromSpec(spec, p.oom_text, last_cap, &plan);
  plan.argv = p.argv.data();
  plan.envp = p.envp.data();
  plan.close_limit = 0;  // the child asks for RLIMIT_NOFILE itself, only if close_range is missing
  plan.mount_namespace = !spec.mounts.empty() || spec.private_sysfs;
  plan.mounts = p.mounts.data();
  plan.mount_count = p.mounts.size();
  plan.inaccessible_directory =
      spec.has_inaccessible_sources ? spec.inaccessible_directory.c_str() : nullptr;
  plan.inaccessible_file = spec.has_inaccessible_sources ? spec.inaccessible_file.c_str() : nullptr;
  plan.private_network = spec.private_network;
  plan.private_sysfs = spec.private_sysfs;
  plan.sysfs_submounts = p.submounts.data();
  plan.sysfs_submount_count = p.submounts.size();
  plan.submount_scratch = p.submount_scratch.data();
  plan.cgroup_procs_fd = -1;
  plan.listen_pid_digits =
      spec.set_listen_pid ? &p.listen_pid_slot[sizeof(kListenPid) - 1] : nullptr;
  plan.report = &p.report;
  // The kernel puts handled signals back to SIG_DFL at the clone; the child resets the ignored.
  plan.clear_handlers = true;
  plan.ignored_signals = ignored_signals;
  plan.park_go_fd = park_go_fd;
  return prepared;
}

// After LaunchChild: a child that failed before exec is reaped (it is a zombie by now or about to
// be) and its pidfd closed, so no exit is ever reported for a spawn that failed. Any thread.
void ReapIfFailed(PreparedSpawn* p) {
  if (p->launched.err != 0 || p->report.step < 0) return;
  ReapFailedChild(p->launched.pid, p->launched.pidfd);
  close(p->launched.pidfd);
  p->launched.pidfd = -1;
}

// The clone failed in the parent, or the child at step CGROUP: the cgroup fd may be what failed.
bool CgroupMayBeAtFault(const PreparedSpawn& p) {
  return p.launched.err != 0 || p.report.step == kStepCgroup;
}

// The error for a spawn that failed (JavaScript thread), or an empty value when it did not.
Napi::Value SpawnFailure(Napi::Env env, const PreparedSpawn& p) {
  const LaunchResult& launched = p.launched;
  if (launched.err != 0) {
    if (launched.cgroup_step) {
      return MakeStepError(env, kStepCgroup, launched.err, launched.syscall, p.spec.cgroup).Value();
    }
    return MakeSystemError(env, launched.err, launched.syscall).Value();
  }
  if (p.report.step < 0) return Napi::Value();
  int step = p.report.step < kStepCount ? p.report.step : kStepExec;
  const char* syscall =
      p.report.syscall > 0 && p.report.syscall < kSysCount ? kSyscallNames[p.report.syscall] : "exec";
  std::string path;
  if (step == kStepMountNamespace && p.report.detail >= 0 &&
      static_cast<size_t>(p.report.detail) < p.spec.mounts.size()) {
    path = p.spec.mounts[p.report.detail].target;
  } else if (step == kStepChdir) {
    path = p.spec.cwd;
  } else if (step == kStepExec) {
    path = p.spec.path;
  } else if (step == kStepCgroup) {
    path = p.spec.cgroup;
  }
  return MakeStepError(env, step, p.report.err, syscall, path).Value();
}

Napi::Object ChildObject(Napi::Env env, const PlanKeys& keys, pid_t pid, int pidfd) {
  Napi::Object result = Napi::Object::New(env);
  result.Set(keys.Get(kKeyPid), Napi::Number::New(env, pid));
  result.Set(keys.Get(kKeyPidfd), Napi::Number::New(env, pidfd));
  return result;
}

}  // namespace

// spawnAsync(): the clone runs on a thread of libuv's pool, so only that thread waits for the
// child's exec; the result comes back on the JavaScript thread.
class SpawnWork : public Napi::AsyncWorker {
 public:
  SpawnWork(Napi::Function done, SpawnAddon* addon, std::unique_ptr<PreparedSpawn> prepared,
            std::shared_ptr<SpawnAddon::Shared> shared, CloneMethod method)
      : Napi::AsyncWorker(done, "triggerd:spawn"),
        addon_(addon),
        seq_(addon->StartSpawn()),
        prepared_(std::move(prepared)),
        shared_(std::move(shared)),
        method_(method) {}

  ~SpawnWork() override {
    if (addon_ != nullptr) {
      addon_->WorkOver(this);
      if (!over_) addon_->SpawnOver(seq_, -1);
    }
    // Never delivered (the environment went away): nobody will ever ask for this child.
    if (!delivered_ && prepared_->launched.pidfd >= 0) close(prepared_->launched.pidfd);
  }

  void Orphan() { addon_ = nullptr; }

  void Execute() override {
    PreparedSpawn* p = prepared_.get();
    std::unique_ptr<ChildStack> stack = shared_->TakeStack();
    int err = stack->Ensure();
    if (err != 0) {
      p->launched.err = err;
      p->launched.syscall = "mmap";
    } else {
      p->launched = LaunchChild(&p->plan, *stack, p->cgroup_fd_in_use, method_,
                                &shared_->clone3_missing, 0);
      ReapIfFailed(p);
    }
    shared_->ReturnStack(std::move(stack));
    // The child has its own copies (or failed): an Accept=yes connection's last other holder is
    // the child from here on, so its exit is the client's EOF without a turn of the event loop.
    p->CloseHandedOver();
  }

  void OnOK() override {
    Napi::Env env = Env();
    PreparedSpawn* p = prepared_.get();
    Napi::Value failure = SpawnFailure(env, *p);
    delivered_ = true;
    if (addon_ == nullptr) {
      if (p->launched.pidfd >= 0) close(p->launched.pidfd);
      return;
    }
    over_ = true;
    if (!failure.IsEmpty()) {
      addon_->SpawnOver(seq_, -1);
      Callback().Call({failure});
      return;
    }
    // Adopted first, so an exit reaped before now is matched to it; it is reported on a later
    // turn, after `done` (the watcher's timer).
    addon_->AdoptChild(p->launched.pid, p->launched.pidfd);
    addon_->SpawnOver(seq_, p->launched.pid);
    Callback().Call(
        {env.Null(), ChildObject(env, addon_->plan_keys(), p->launched.pid, p->launched.pidfd)});
  }

 private:
  SpawnAddon* addon_;
  uint64_t seq_;
  bool over_ = false;
  std::unique_ptr<PreparedSpawn> prepared_;
  std::shared_ptr<SpawnAddon::Shared> shared_;
  CloneMethod method_;
  bool delivered_ = false;
};

// prepare(plan): a spawn read and laid out now and cloned later, with no JavaScript on the way:
// from another addon's native code through `launcher` (an inotify armed call), or by launch().
// It clones at most once. launch() hands the child over (or throws the failure) and frees the
// plan; release() frees it unused, killing a child nobody took.
class PreparedLaunch : public Napi::ObjectWrap<PreparedLaunch> {
 public:
  static Napi::Function DefineClass(Napi::Env env) {
    return ObjectWrap<PreparedLaunch>::DefineClass(
        env, "PreparedLaunch",
        {
            InstanceMethod<&PreparedLaunch::LaunchMethod>("launch"),
            InstanceMethod<&PreparedLaunch::Release>("release"),
            InstanceAccessor<&PreparedLaunch::Launched>("launched"),
            InstanceAccessor<&PreparedLaunch::ParkedPid>("parkedPid"),
        });
  }

  explicit PreparedLaunch(const Napi::CallbackInfo& info) : ObjectWrap<PreparedLaunch>(info) {
    Napi::Env env = info.Env();
    hook_.launch = &PreparedLaunch::LaunchFromNative;
    hook_.context = this;
    Napi::Object self = info.This().As<Napi::Object>();
    NAPI_THROW_IF_FAILED_VOID(env, napi_type_tag_object(env, self, &kNativeLaunchTag));
    self.DefineProperty(Napi::PropertyDescriptor::Value(
        kNativeLaunchProperty, Napi::External<NativeLaunch>::New(env, &hook_), napi_default));
  }

  // Only objects this class made (instance_tag.h): a getter called on a foreign `this` must not
  // read another class's object as ours.
  static PreparedLaunch* Unwrap(Napi::Object object) {
    return UnwrapTagged<PreparedLaunch>(object, &kNativeLaunchTag, "PreparedLaunch");
  }

  // prepare() only: a PreparedLaunch made any other way has nothing to launch.
  void Adopt(SpawnAddon* addon, std::unique_ptr<PreparedSpawn> prepared) {
    addon_ = addon;
    prepared_ = std::move(prepared);
    addon_->launches().insert(this);
  }

  // prepare() with `park`: the child is cloned now (LaunchParkedChild), makes the whole set-up
  // and waits until LaunchNow writes its go byte to `go_write` (owned from here on). Throws the
  // failure, with nothing left running.
  void Park(Napi::Env env, int go_write) {
    FdGuard go(go_write);
    PreparedSpawn* p = prepared_.get();
    // It shares the daemon's memory until its exec: never under another user's credentials.
    if (p->spec.has_uid || p->spec.has_gid || p->spec.has_groups) {
      throw MakeSystemError(env, EPERM, "park");
    }
    p->park_stack = std::make_unique<ChildStack>();
    int err = p->park_stack->Ensure();
    if (err != 0) throw MakeSystemError(env, err, "mmap");
    BindFailure failure = BindFds(p, addon_->fd_cache());
    if (failure.err != 0) throw BindError(env, *p, failure);
    p->plan.park_word = &p->park_word;
    p->launched = LaunchParkedChild(&p->plan, *p->park_stack, p->cgroup_fd_in_use);
    if (p->launched.err != 0 && p->launched.pid > 0) {
      // Died in its set-up without a report (killed): reaped here, as a failed spawn is.
      ReapFailedChild(p->launched.pid, p->launched.pidfd);
      close(p->launched.pidfd);
      p->launched.pidfd = -1;
    }
    ReapIfFailed(p);
    Napi::Value error = SpawnFailure(env, *p);
    if (!error.IsEmpty()) throw Napi::Error(env, error);
    addon_->AdoptChild(p->launched.pid, p->launched.pidfd);
    parked_ = true;
    parked_pid_ = p->launched.pid;
    go_fd_ = go.release();
  }

  // The addon is going away (the environment's teardown): nothing of it may be used after this.
  void Orphan() { addon_ = nullptr; }

  // Collected unreleased: as release().
  ~PreparedLaunch() override {
    KillUntaken();
    CloseGo();
    Finish(std::move(prepared_));
    if (addon_ != nullptr) addon_->launches().erase(this);
  }

 private:
  static void LaunchFromNative(void* context) {
    static_cast<PreparedLaunch*>(context)->LaunchNow(true);
  }

  void LaunchNow(bool yield_after) {
    if (prepared_ == nullptr || launched_ || addon_ == nullptr) return;
    launched_ = true;
    PreparedSpawn* p = prepared_.get();
    if (parked_) {
      // Gone already (its state word is 0 once it exited): the launch fails, and the start goes
      // the ordinary way, rather than a byte to a pipe nobody reads, or to whatever file took
      // the number of a write end closed behind our back.
      if (__atomic_load_n(&p->park_word, __ATOMIC_ACQUIRE) != kParkParked) {
        p->launched.err = ESRCH;
        p->launched.syscall = "write";
        CloseGo();
        return;
      }
      // One write: the parked child (woken, maybe on another CPU) execs the plan's program.
      ssize_t n;
      do {
        n = write(go_fd_, "g", 1);
      } while (n < 0 && errno == EINTR);
      if (n != 1) {
        // It is gone (EPIPE): the launch fails as a failed clone would.
        p->launched.err = n < 0 ? errno : EIO;
        p->launched.syscall = "write";
      }
      CloseGo();
      if (yield_after) sched_yield();
      return;
    }
    // Bound now: fd numbers read long before may have been closed and reused since.
    BindFailure failure = BindFds(p, addon_->fd_cache());
    if (failure.err != 0) {
      p->launched.err = failure.err;
      p->launched.syscall = "open";
      p->launched.cgroup_step = failure.cgroup;
      return;
    }
    addon_->Launch(p, yield_after);
  }

  // launch(options?) → the child, cloned now or already from native code; throws its failure.
  Napi::Value LaunchMethod(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    bool yield_after = YieldAfterOption(env, info[0]);
    if (prepared_ == nullptr || addon_ == nullptr) {
      throw MakeArgumentError(env, "The prepared launch was released or already launched",
                              "ERR_INVALID_STATE");
    }
    LaunchNow(yield_after);
    std::unique_ptr<PreparedSpawn> done = std::move(prepared_);
    // However this ends: a parked child may still be on its way to its exec.
    struct Burial {
      PreparedLaunch* self;
      std::unique_ptr<PreparedSpawn>* spawn;
      ~Burial() { self->Finish(std::move(*spawn)); }
    } burial{this, &done};
    Napi::Value failure = SpawnFailure(env, *done);
    if (!failure.IsEmpty()) {
      // A parked child that missed its go byte must not run on.
      if (parked_ && ChildStillOwned(*done)) {
        syscall(SYS_pidfd_send_signal, done->launched.pidfd, SIGKILL, nullptr, 0);
      }
      throw Napi::Error(env, failure);
    }
    if (!ChildStillOwned(*done)) {
      // Cloned from native code and left untaken until its exit was reported: its pidfd is
      // closed (the number may be another file's by now), and its pid was already given out.
      throw MakeArgumentError(env, "The prepared launch's child exited before launch() took it",
                              "ERR_INVALID_STATE");
    }
    return ChildObject(env, addon_->plan_keys(), done->launched.pid, done->launched.pidfd);
  }

  void Release(const Napi::CallbackInfo& info) {
    KillUntaken();
    CloseGo();
    Finish(std::move(prepared_));
  }

  // The plan is no longer ours to launch: freed, or, for a parked child that may still use it
  // (a killed one not dead yet, a launched one before its exec), handed to the addon until then.
  // Without the addon (its environment's teardown) such a plan is left allocated.
  void Finish(std::unique_ptr<PreparedSpawn> spawn) {
    if (spawn == nullptr) return;
    if (addon_ != nullptr) {
      addon_->BuryParked(std::move(spawn));
    } else if (spawn->park_stack != nullptr &&
               __atomic_load_n(&spawn->park_word, __ATOMIC_ACQUIRE) != 0) {
      spawn.release();
    }
  }

  Napi::Value Launched(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), launched_);
  }

  // The parked child's pid (prepare()'s `park`), or 0.
  Napi::Value ParkedPid(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), parked_pid_);
  }

  // Its end closed, a parked child that never got its go byte reads EOF and exits.
  void CloseGo() {
    if (go_fd_ >= 0) close(go_fd_);
    go_fd_ = -1;
  }

  // Whether the addon still holds the child's pidfd: the child watcher closes it once the exit
  // was reported, and closeFd() may have taken it.
  bool ChildStillOwned(const PreparedSpawn& p) const {
    if (addon_ == nullptr) return false;
    auto found = addon_->children().find(p.launched.pid);
    return found != addon_->children().end() && found->second == p.launched.pidfd;
  }

  // Cloned from native code and never taken by launch(): nobody knows of it, so it must not run.
  // Its exit is reported as an own child's (the addon adopted it). Only through a pidfd the addon
  // still holds: after the exit was reported the number may be another file's.
  void KillUntaken() {
    if (prepared_ == nullptr || !(launched_ || parked_)) return;
    const LaunchResult& launched = prepared_->launched;
    if (launched.err == 0 && prepared_->report.step < 0 && launched.pidfd >= 0 &&
        ChildStillOwned(*prepared_)) {
      syscall(SYS_pidfd_send_signal, launched.pidfd, SIGKILL, nullptr, 0);
    }
  }

  SpawnAddon* addon_ = nullptr;
  std::unique_ptr<PreparedSpawn> prepared_;
  bool launched_ = false;
  bool parked_ = false;
  pid_t parked_pid_ = 0;
  // The parked child's go pipe (write end), until its byte is written or the launch released.
  int go_fd_ = -1;
  NativeLaunch hook_ = {};
};

SpawnAddon::~SpawnAddon() {
  // The environment is gone: the watcher (closed by its teardown hook before this runs) must not
  // call back, and pidfds nobody can use any more are closed.
  if (watcher_ != nullptr) watcher_->Close();
  for (const auto& child : children_) {
    if (child.second >= 0) close(child.second);
  }
  for (SpawnWork* work : works_) work->Orphan();
  for (PreparedLaunch* launch : launches_) launch->Orphan();
  // A parked child still on its way to its exec may use these: left allocated.
  for (std::unique_ptr<PreparedSpawn>& p : parked_graves_) {
    if (__atomic_load_n(&p->park_word, __ATOMIC_ACQUIRE) != 0) p.release();
  }
}

std::unique_ptr<ChildStack> SpawnAddon::Shared::TakeStack() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!stacks.empty()) {
      std::unique_ptr<ChildStack> stack = std::move(stacks.back());
      stacks.pop_back();
      return stack;
    }
  }
  return std::make_unique<ChildStack>();
}

void SpawnAddon::Shared::ReturnStack(std::unique_ptr<ChildStack> stack) {
  std::lock_guard<std::mutex> lock(mutex);
  // As many as spawns ran at once (at most libuv's pool size), so at most a few.
  stacks.push_back(std::move(stack));
}

void SpawnAddon::AdoptChild(pid_t pid, int pidfd) {
  children_[pid] = pidfd;
  if (watcher_ != nullptr) watcher_->WatchPidfd(pid, pidfd);
}

bool SpawnAddon::DeferExit(pid_t pid, int code, int status) {
  if (in_flight_.empty()) return false;
  deferred_.push_back({{pid, code, status, false}, next_seq_ - 1});
  return true;
}

void SpawnAddon::SpawnOver(uint64_t seq, pid_t pid) {
  in_flight_.erase(seq);
  uint64_t oldest = in_flight_.empty() ? UINT64_MAX : *in_flight_.begin();
  size_t kept = 0;
  for (DeferredExit& entry : deferred_) {
    if (pid > 0 && entry.exit.pid == pid && entry.last_seq >= seq) {
      entry.exit.own = true;  // ForgetChild() closes its pidfd when the exit is reported
      ready_.push_back(entry.exit);
    } else if (entry.last_seq < oldest) {
      ready_.push_back(entry.exit);  // no spawn it could belong to is left: an orphan
    } else {
      deferred_[kept++] = entry;
    }
  }
  deferred_.resize(kept);
  if (!ready_.empty() && watcher_ != nullptr) watcher_->WakeSoon();
}

std::vector<ReadyExit> SpawnAddon::TakeReadyExits(size_t max) {
  std::vector<ReadyExit> out;
  if (ready_.empty()) return out;
  if (ready_.size() <= max) {
    out.swap(ready_);
    return out;
  }
  out.assign(ready_.begin(), ready_.begin() + static_cast<std::ptrdiff_t>(max));
  ready_.erase(ready_.begin(), ready_.begin() + static_cast<std::ptrdiff_t>(max));
  return out;
}

void SpawnAddon::WorkOver(SpawnWork* work) { works_.erase(work); }

Napi::Value SpawnAddon::Spawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bool yield_after = YieldAfterOption(env, info[1]);
  std::unique_ptr<PreparedSpawn> prepared =
      PrepareSpawn(env, info[0], last_cap_, *plan_keys_, ignored_signals_, &fd_cache_);
  PreparedSpawn* p = prepared.get();
  Launch(p, yield_after);
  Napi::Value failure = SpawnFailure(env, *p);
  if (!failure.IsEmpty()) throw Napi::Error(env, failure);
  return ChildObject(env, *plan_keys_, p->launched.pid, p->launched.pidfd);
}

void SpawnAddon::Launch(PreparedSpawn* p, bool yield_after) {
  int err = stack_.Ensure();
  if (err != 0) {
    p->launched.err = err;
    p->launched.syscall = "mmap";
    return;
  }
  p->launched = LaunchChild(&p->plan, stack_, p->cgroup_fd_in_use, clone_method_,
                            &shared_->clone3_missing, SIGCHLD);
  ReapIfFailed(p);
  if (p->spec.has_cgroup && CgroupMayBeAtFault(*p)) {
    // No fd a spawn failed with is kept. A held one may name a group that was removed since
    // (clone3 fails for a dead one: ENOENT here, ENODEV on some kernels), maybe made again at the
    // same path: try once more with the path opened afresh.
    fd_cache_.ForgetCgroup(p->spec.cgroup);
    if (p->cgroup_fd_held) {
      p->cgroup_fd_in_use = fd_cache_.CgroupFd(p->spec.cgroup, &p->cgroup_fd_held);
      if (p->cgroup_fd_in_use < 0) {
        p->launched = LaunchResult();
        p->launched.err = errno;
        p->launched.syscall = "open";
        p->launched.cgroup_step = true;
        return;
      }
      p->report = {-1, 0, 0, -1, 0};
      p->launched = LaunchChild(&p->plan, stack_, p->cgroup_fd_in_use, clone_method_,
                                &shared_->clone3_missing, SIGCHLD);
      ReapIfFailed(p);
      if (CgroupMayBeAtFault(*p)) fd_cache_.ForgetCgroup(p->spec.cgroup);
    }
  }
  if (p->launched.err != 0 || p->report.step >= 0) return;
  AdoptChild(p->launched.pid, p->launched.pidfd);
  // The exec woke us, and we preempted the child on this CPU: let it run first.
  if (yield_after) sched_yield();
}

// prepare(plan) → a PreparedLaunch: the plan read and checked now (TypeError), its fds bound and
// the clone made at launch.
//
// `options.park`: the child is cloned now instead, makes the plan's whole set-up and waits,
// parked, for the launch, which is then one write: it execs the plan's program (src/core/
// path-armed-start.ts). A failure before it parks is thrown here.
Napi::Value SpawnAddon::Prepare(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SweepParked();
  bool parked = BooleanOption(env, info[1], "park");
  FdGuard go_read;
  FdGuard go_write;
  ParkSpec park = {-1};
  if (parked) {
    int go[2];
    if (pipe2(go, O_CLOEXEC) != 0) throw MakeSystemError(env, errno, "pipe2");
    go_read.reset(go[0]);
    go_write.reset(go[1]);
    park.go_read_fd = go[0];
  }
  std::unique_ptr<PreparedSpawn> prepared =
      PrepareSpawn(env, info[0], last_cap_, *plan_keys_, ignored_signals_, &fd_cache_, false,
                   parked ? &park : nullptr);
  if (prepared_class_.IsEmpty()) prepared_class_ = Napi::Persistent(PreparedLaunch::DefineClass(env));
  Napi::Object object = prepared_class_.New({});
  PreparedLaunch* launch = PreparedLaunch::Unwrap(object);
  launch->Adopt(this, std::move(prepared));
  if (parked) launch->Park(env, go_write.release());
  return object;
}

void SpawnAddon::BuryParked(std::unique_ptr<PreparedSpawn> p) {
  if (p->park_stack != nullptr && __atomic_load_n(&p->park_word, __ATOMIC_ACQUIRE) != 0) {
    parked_graves_.push_back(std::move(p));
  }
  SweepParked();
}

void SpawnAddon::SweepParked() {
  parked_graves_.erase(std::remove_if(parked_graves_.begin(), parked_graves_.end(),
                                      [](const std::unique_ptr<PreparedSpawn>& p) {
                                        return __atomic_load_n(&p->park_word, __ATOMIC_ACQUIRE) == 0;
                                      }),
                       parked_graves_.end());
}

void SpawnAddon::SpawnAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[1].IsFunction()) throw MakeArgumentError(env, "The \"done\" argument must be a function");
  std::vector<int> hand_over;
  if (!info[2].IsUndefined()) {
    if (!info[2].IsArray()) throw MakeArgumentError(env, "The \"handOver\" argument must be an array");
    Napi::Array fds = info[2].As<Napi::Array>();
    for (uint32_t i = 0; i < fds.Length(); i++) {
      hand_over.push_back(static_cast<int>(IntegerArgument(env, fds.Get(i), "handOver[]", 0, INT_MAX)));
    }
  }
  std::unique_ptr<PreparedSpawn> prepared =
      PrepareSpawn(env, info[0], last_cap_, *plan_keys_, ignored_signals_, nullptr);
  prepared->handed_over = std::move(hand_over);
  auto* work = new SpawnWork(info[1].As<Napi::Function>(), this, std::move(prepared), shared_,
                             clone_method_);
  works_.insert(work);
  work->Queue();
}

void SpawnAddon::SetSubreaper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBoolean()) throw MakeArgumentError(env, "The \"on\" argument must be a boolean");
  unsigned long on = info[0].As<Napi::Boolean>().Value() ? 1 : 0;
  if (prctl(PR_SET_CHILD_SUBREAPER, on, 0, 0, 0) != 0) throw MakeSystemError(env, errno, "prctl");
}

Napi::Value SpawnAddon::IsSubreaper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int value = 0;
  if (prctl(PR_GET_CHILD_SUBREAPER, &value, 0, 0, 0) != 0) throw MakeSystemError(env, errno, "prctl");
  return Napi::Boolean::New(env, value != 0);
}

Napi::Value SpawnAddon::WatchChildren(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) {
    throw MakeArgumentError(env, "The \"onExits\" argument must be a function");
  }
  uint64_t id = next_watcher_id_++;
  // Built before the watcher starts, so nothing can fail once it runs.
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("close", Napi::Function::New(env, [this, id](const Napi::CallbackInfo&) {
               if (ChildWatcher* watcher = WatcherById(id)) watcher->Close();
             }));
  handle.Set("ref", Napi::Function::New(env, [this, id](const Napi::CallbackInfo&) {
               if (ChildWatcher* watcher = WatcherById(id)) watcher->SetReferenced(true);
             }));
  handle.Set("unref", Napi::Function::New(env, [this, id](const Napi::CallbackInfo&) {
               if (ChildWatcher* watcher = WatcherById(id)) watcher->SetReferenced(false);
             }));
  watcher_ = ChildWatcher::Start(env, this, info[0].As<Napi::Function>(), handle, id);
  return handle;
}

void SpawnAddon::PidfdSendSignal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pidfd = static_cast<int>(IntegerArgument(env, info[0], "pidfd", 0, INT_MAX));
  int signal = static_cast<int>(IntegerArgument(env, info[1], "signal", 0, 64));
  if (syscall(SYS_pidfd_send_signal, pidfd, signal, nullptr, 0) != 0) {
    throw MakeSystemError(env, errno, "pidfd_send_signal");
  }
}

void SpawnAddon::Kill(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int pid = static_cast<int>(IntegerArgument(env, info[0], "pid", -INT_MAX, INT_MAX));
  // 0 (our own process group) and -1 (every process we may signal) are never what a caller
  // holding a pid meant; a negative pid below that is a process group.
  if (pid == 0 || pid == -1) {
    throw MakeArgumentError(env, "The \"pid\" argument must not be 0 or -1", "ERR_INVALID_ARG_VALUE");
  }
  int signal = static_cast<int>(IntegerArgument(env, info[1], "signal", 0, 64));
  if (kill(pid, signal) != 0) throw MakeSystemError(env, errno, "kill");
}

void SpawnAddon::CloseFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntegerArgument(env, info[0], "fd", 0, INT_MAX));
  // A pidfd of a child whose exit onExits is being told: ours to close now, not after it.
  if (watcher_ != nullptr && watcher_->TakeBackBatchPidfd(fd)) {
    if (close(fd) != 0 && errno != EINTR) throw MakeSystemError(env, errno, "close");
    return;
  }
  // A pidfd of an own child: stop polling it first (SIGCHLD still reports the exit).
  for (auto& child : children_) {
    if (child.second != fd) continue;
    if (watcher_ != nullptr) watcher_->UnwatchPidfd(child.first);
    child.second = -1;
    break;
  }
  if (close(fd) != 0 && errno != EINTR) throw MakeSystemError(env, errno, "close");
}

Napi::Value SpawnAddon::Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw MakeSystemError(env, errno, "pipe2");
  // Only our end is non-blocking: the write end goes to a service that expects ordinary
  // blocking writes (O_NONBLOCK belongs to the open file, which it would share).
  int flags = fcntl(fds[0], F_GETFL);
  if (flags < 0 || fcntl(fds[0], F_SETFL, flags | O_NONBLOCK) != 0) {
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    throw MakeSystemError(env, err, "fcntl");
  }
  Napi::Array result = Napi::Array::New(env, 2);
  result.Set(0u, Napi::Number::New(env, fds[0]));
  result.Set(1u, Napi::Number::New(env, fds[1]));
  return result;
}

Napi::Value SpawnAddon::ForgetCgroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw MakeArgumentError(env, "The \"path\" argument must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  // The same checks as plan.cgroup: anything else was never held.
  if (path.empty() || path[0] != '/' || path.find('\0') != std::string::npos ||
      path.size() >= PATH_MAX) {
    throw MakeArgumentError(env, "The \"path\" argument must be an absolute path without NUL bytes",
                            "ERR_INVALID_ARG_VALUE");
  }
  return Napi::Boolean::New(env, fd_cache_.ForgetCgroup(path));
}

void SpawnAddon::SetCloneMethodForTesting(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string method = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
  if (method == "auto") {
    clone_method_ = CloneMethod::kAuto;
  } else if (method == "clone3") {
    clone_method_ = CloneMethod::kClone3;
  } else if (method == "clone") {
    clone_method_ = CloneMethod::kClone;
  } else if (method == "clone3-no-rejoin") {
    clone_method_ = CloneMethod::kClone3NoRejoin;
  } else {
    throw MakeArgumentError(
        env, "The \"method\" argument must be 'auto', 'clone3', 'clone' or 'clone3-no-rejoin'");
  }
}

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::SpawnAddon;
NODE_API_ADDON(SpawnAddon)
