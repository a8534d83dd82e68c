#include "accept_spawn.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../common/batch_item.h"
#include "../common/js_calls.h"
#include "../common/pidfd_compat.h"
#include "../netlink/system_error.h"
#include "../spawn/spawn_child.h"
#include "../spawn/spawn_plan.h"
#include "address_argument.h"


namespace triggerd {

namespace {

// Connections one thread takes per wake-up before exits are looked at again (epoll is
// level-triggered: the rest wake a thread at once).
constexpr int kAcceptsPerWakeUp = 4;
// Threads that accept and clone: a vfork-style clone holds its thread until the child has
// exec'd, so with one thread the next connection would wait for the last child's exec; several
// let the children's pre-exec work and execve overlap (libuv's pool has 4 threads for the same
// reason, for spawnAsync).
constexpr int kSpawnThreads = 4;
constexpr int kMaxEvents = 64;
// epoll data for the two fds that are not pidfds (pids are > 0).
constexpr uint64_t kListenTag = 0;
// The listening fd and the pidfds are one-shot in the shared epoll set: an event wakes one
// thread, not every idle one in turn (a level-triggered event is handed to the next waiter until
// someone consumed it: 3 spurious wake-ups, mutex round trips and accept4 EAGAINs per connection
// and per exit). The thread that took the listening fd's event re-arms it right after its
// accept4, so the next connection can go to another thread while this one clones.
constexpr uint32_t kListenEvents = EPOLLIN | EPOLLONESHOT;
constexpr uint64_t kWakeTag = UINT64_MAX;
constexpr char kSlotInfix[] = ".slot-f";

struct Record {
  enum Kind { kStarted, kFailed, kRefused, kExited, kAcceptError } kind;
  uint64_t seq = 0;
  pid_t pid = -1;
  double at_ms = 0;  // wall clock of the accept
  struct sockaddr_storage local = {};
  socklen_t local_length = 0;
  struct sockaddr_storage remote = {};
  socklen_t remote_length = 0;
  int peer_pid = -1;
  int peer_uid = -1;
  std::string slot;  // the cgroup the child went into ("" without)
  // kFailed, kAcceptError
  int step = -1;  // -1: the clone itself (or accept) failed
  int err = 0;
  const char* syscall = nullptr;
  std::string path;
  // kExited
  int code = 0;
  int status = 0;
  bool slot_busy = false;
  // kRefused: the live count that refused it
  int live = 0;
};

double WallMs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1000.0 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// REMOTE_ADDR/REMOTE_PORT exactly as src/units/socket-address.ts remoteEnvironment() makes them:
// IP peers only, an IPv4-mapped IPv6 address as IPv4.
void RemoteEnvironment(const struct sockaddr_storage& remote, socklen_t length,
                       std::string* addr, std::string* port) {
  char text[INET6_ADDRSTRLEN] = {};
  if (remote.ss_family == AF_INET && length >= sizeof(struct sockaddr_in)) {
    const auto* in = reinterpret_cast<const struct sockaddr_in*>(&remote);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text));
    *addr = std::string("REMOTE_ADDR=") + text;
    *port = "REMOTE_PORT=" + std::to_string(ntohs(in->sin_port));
  } else if (remote.ss_family == AF_INET6 && length >= sizeof(struct sockaddr_in6)) {
    const auto* in6 = reinterpret_cast<const struct sockaddr_in6*>(&remote);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], text, sizeof(text));
    } else {
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text));
    }
    *addr = std::string("REMOTE_ADDR=") + text;
    *port = "REMOTE_PORT=" + std::to_string(ntohs(in6->sin6_port));
  } else {
    addr->clear();
    port->clear();
  }
}

class Spawner;

// Every spawner whose thread may still run, by environment (teardown stops them).
std::mutex registry_mutex;
std::set<std::shared_ptr<Spawner>>* registry = nullptr;

void Unregister(const std::shared_ptr<Spawner>& spawner) {
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (registry != nullptr) registry->erase(spawner);
}

class Spawner : public std::enable_shared_from_this<Spawner> {
 public:
  Spawner() = default;
  ~Spawner() {
    if (epoll_fd_ >= 0) close(epoll_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    if (null_fd_ >= 0) close(null_fd_);
    for (const auto& child : children_) close(child.second.pidfd);
    for (const Slot& slot : slots_) {
      if (slot.fd >= 0) close(slot.fd);
      if (slot.events_fd >= 0) close(slot.events_fd);
    }
  }
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;

  // Everything that can fail is done here, on the JavaScript thread, before the thread starts.
  void Prepare(Napi::Env env, int listen_fd, Napi::Value plan_value, Napi::Object options) {
    listen_fd_ = listen_fd;
    int accepting = 0;
    socklen_t length = sizeof(accepting);
    if (getsockopt(listen_fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) != 0) {
      throw MakeSystemError(env, errno, "getsockopt");
    }
    if (accepting == 0) throw MakeSystemError(env, EINVAL, "acceptSpawn");
    FindFixedLocalAddress(listen_fd);

    spec_ = ReadPlan(env, plan_value);
    if (!spec_.mounts.empty() || spec_.private_network || spec_.private_sysfs ||
        spec_.set_listen_pid) {
      throw MakeArgumentError(env,
                              "The \"plan\" argument must not need a mount or network namespace "
                              "or LISTEN_PID (not on the accept fast path)",
                              "ERR_INVALID_ARG_VALUE");
    }
    if (spec_.has_cgroup) {
      throw MakeArgumentError(env, "The \"plan.cgroup\" property must be absent (options.cgroupPool says where)",
                              "ERR_INVALID_ARG_VALUE");
    }

    Napi::Value max = options.Get("maxConnections");
    max_connections_ = static_cast<int>(IntegerArgument(env, max, "options.maxConnections", 1, INT_MAX));
    Napi::Value remote_env = options.Get("remoteEnvironment");
    if (!remote_env.IsUndefined() && !remote_env.IsBoolean()) {
      throw MakeArgumentError(env, "The \"options.remoteEnvironment\" property must be a boolean");
    }
    remote_env_ = remote_env.IsBoolean() && remote_env.As<Napi::Boolean>().Value();
    Napi::Value connection_fds = options.Get("connectionFds");
    if (!connection_fds.IsArray()) {
      throw MakeArgumentError(env, "The \"options.connectionFds\" property must be an array");
    }
    Napi::Array list = connection_fds.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
      int child_fd = static_cast<int>(IntegerArgument(env, list.Get(i), "options.connectionFds[]", 0, 2));
      bool found = false;
      for (size_t k = 0; k < spec_.fds.size(); k++) {
        if (spec_.fds[k].child_fd == child_fd) {
          connection_slots_.push_back(k);
          found = true;
        }
      }
      if (!found) {
        throw MakeArgumentError(env, "The \"options.connectionFds\" property names fd " +
                                         std::to_string(child_fd) + ", which the plan does not map",
                                "ERR_INVALID_ARG_VALUE");
      }
    }
    Napi::Value pool = options.Get("cgroupPool");
    if (!pool.IsUndefined()) {
      if (!pool.IsString()) throw MakeArgumentError(env, "The \"options.cgroupPool\" property must be a string");
      slot_prefix_ = pool.As<Napi::String>().Utf8Value();
      if (slot_prefix_.size() < 2 || slot_prefix_.size() > PATH_MAX - 32 || slot_prefix_[0] != '/' ||
          slot_prefix_.find('\0') != std::string::npos || slot_prefix_.back() == '/') {
        throw MakeArgumentError(env, "The \"options.cgroupPool\" property must be an absolute path",
                                "ERR_INVALID_ARG_VALUE");
      }
      slot_prefix_ += kSlotInfix;
    }

    // The child's view of the template, as native/spawn's PrepareSpawn lays it out.
    for (std::string& arg : spec_.argv) argv_.push_back(&arg[0]);
    argv_.push_back(nullptr);
    for (std::string& entry : spec_.env) base_env_.push_back(&entry[0]);
    if (spec_.has_oom_score_adjust) oom_text_ = std::to_string(spec_.oom_score_adjust);
    null_fd_ = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd_ < 0) {
      Napi::Error error = MakeSystemError(env, errno, "open");
      error.Set("path", Napi::String::New(env, "/dev/null"));
      throw error;
    }
    int max_child_fd = LayOutChildFds(&spec_.fds, null_fd_, &gap_fds_);
    fds_ = spec_.fds;

    ChildPlan& plan = plan_;
    FillChildPlanFromSpec(spec_, oom_text_, ProbeLastCapability(), &plan);
    plan.argv = argv_.data();
    plan.fds = fds_.data();
    plan.fd_count = fds_.size();
    plan.fd_scratch = nullptr;
    plan.gap_fds = gap_fds_.data();
    plan.gap_count = gap_fds_.size();
    plan.max_child_fd = max_child_fd;
    plan.dup_base = max_child_fd + 1;
    plan.close_limit = ChildCloseLimit();
    plan.mount_namespace = false;
    plan.mounts = nullptr;
    plan.mount_count = 0;
    plan.inaccessible_directory = nullptr;
    plan.inaccessible_file = nullptr;
    plan.private_network = false;
    plan.private_sysfs = false;
    plan.sysfs_submounts = nullptr;
    plan.sysfs_submount_count = 0;
    plan.submount_scratch = nullptr;
    plan.cgroup_procs_fd = -1;
    plan.listen_pid_digits = nullptr;
    plan.report = nullptr;
    // The kernel clears the handlers at the clone; the child resets what the daemon ignores (read
    // once here: Node ignores SIGPIPE at start-up and the daemon ignores nothing later; SIGPIPE
    // and SIGXFSZ are always reset in case).
    plan.clear_handlers = true;
    plan.ignored_signals = IgnoredSignals();
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw MakeSystemError(env, errno, "epoll_create1");
    wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) throw MakeSystemError(env, errno, "eventfd");
    struct epoll_event ev = {};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeTag;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) throw MakeSystemError(env, errno, "epoll_ctl");
    // The thread must never block in accept4: another holder of the socket may take a connection.
    int flags = fcntl(listen_fd, F_GETFL);
    if (flags < 0 || fcntl(listen_fd, F_SETFL, flags | O_NONBLOCK) != 0) throw MakeSystemError(env, errno, "fcntl");
    ev.events = kListenEvents;
    ev.data.u64 = kListenTag;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd, &ev) != 0) throw MakeSystemError(env, errno, "epoll_ctl");
    listening_ = true;
  }

  napi_env env() const { return env_; }

  void Start(Napi::Env env, Napi::Function on_records) {
    env_ = env;
    auto* context = new std::shared_ptr<Spawner>(shared_from_this());
    // Runs on the JavaScript thread once the thread released it and every delivery ran.
    tsfn_ = Napi::ThreadSafeFunction::New(
        env, on_records, "triggerd:acceptSpawn", 0, kSpawnThreads, context,
        [](Napi::Env, std::shared_ptr<Spawner>* ctx) {
          (*ctx)->Join();
          (*ctx)->callback_ref_.Reset();
          (*ctx)->RemoveFreeSlots();
          Unregister(*ctx);
          delete ctx;
        });
    for (int i = 0; i < kSpawnThreads; i++) {
      threads_.emplace_back([self = shared_from_this()] { self->Run(); });
    }
  }

  // Stop taking connections until Resume(); when this returns, no accept or clone is under way
  // and the records so far are queued.
  void Pause() {
    std::unique_lock<std::mutex> lock(mutex_);
    SetListening(false);
    paused_ = true;
    idle_.wait(lock, [this] { return in_flight_ == 0; });
  }

  void Resume() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    paused_ = false;
    SetListening(true);
  }

  // No more connections; the listening fd is the caller's again when this returns. The thread
  // goes on reaping the live children (their exits still come as records), then ends.
  void Close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return;
      closed_ = true;
      SetListening(false);
    }
    Wake();
  }

  // Teardown: the threads end now; live children are left to whoever reaps them.
  void Terminate() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
      terminating_ = true;
      SetListening(false);
    }
    Wake();
    Join();
  }

  // pidfd_send_signal to a live child of this spawner: false once it was reaped (no pid reuse).
  bool Signal(pid_t pid, int signal) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = children_.find(pid);
    if (found == children_.end()) return false;
    return syscall(SYS_pidfd_send_signal, found->second.pidfd, signal, nullptr, 0) == 0;
  }

  void Join() {
    for (std::thread& thread : threads_) {
      if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
    }
  }

  // MaxConnections= less the instances this spawner does not count (adopted after a re-exec).
  void SetMaxConnections(int max) {
    std::lock_guard<std::mutex> lock(mutex_);
    max_connections_ = max;
  }

  // Every process in the slot group of instance `pid` gets `signal`, while that group is still
  // the instance's: a group found empty at its exit goes back to the pool, and a later instance
  // may be in it before JavaScript has read the exit. Under the mutex, so no clone reuses it
  // meanwhile. SIGKILL through cgroup.kill where there is one, else to each pid in cgroup.procs.
  // False when the instance has no such group (any more).
  bool SignalGroup(pid_t pid, int signal) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Slot& slot : slots_) {
      if (slot.owner != pid || slot.free) continue;
      if (signal == SIGKILL) {
        int kill_fd = openat(slot.fd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
        if (kill_fd >= 0) {
          bool killed = write(kill_fd, "1", 1) == 1;
          close(kill_fd);
          if (killed) {
            slot.killed = true;
            return true;
          }
        }
      }
      int procs_fd = openat(slot.fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
      if (procs_fd < 0) return false;
      std::string text;
      char buffer[4096];
      ssize_t got;
      while ((got = read(procs_fd, buffer, sizeof(buffer))) > 0) text.append(buffer, static_cast<size_t>(got));
      close(procs_fd);
      for (size_t at = 0; at < text.size();) {
        size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        long member = strtol(text.c_str() + at, nullptr, 10);
        if (member > 0) kill(static_cast<pid_t>(member), signal);
        at = end + 1;
      }
      return true;
    }
    return false;
  }

  int Live() {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int>(children_.size());
  }

  // The JavaScript thread: hand over what is queued. Only queue_mutex_: the accept thread holds
  // mutex_ through a whole round of accepts and clones, and on a loaded machine the event loop
  // waited here for 250-350 ms at a time (bench/load: futex_do_wait).
  void Deliver(Napi::Env env, Napi::Function callback) {
    std::vector<Record> records;
    {
      std::lock_guard<std::mutex> lock(queue_mutex_);
      delivery_scheduled_ = false;
      records.swap(queue_);
    }
    if (records.empty() || !CanCallIntoJs(env)) return;
    Napi::HandleScope scope(env);
    Napi::Array batch = Napi::Array::New(env, records.size());
    RecordKeys keys(env);
    uint32_t n = 0;
    for (const Record& r : records) batch.Set(n++, ToObject(env, keys, r));
    try {
      callback.Call({batch});
    } catch (const Napi::Error& error) {
      RaiseUncaught(env, error);
    }
  }

  // Tests and teardown: deliver now what the thread queued (the JavaScript thread).
  void Flush(Napi::Env env) {
    if (!callback_ref_.IsEmpty()) Deliver(env, callback_ref_.Value());
  }

  Napi::FunctionReference callback_ref_;

 private:
  struct Child {
    int pidfd;
    int slot;
  };

  // One spawning thread's own copy of the per-connection parts of the plan and its child stack.
  struct Worker {
    explicit Worker(const Spawner& spawner)
        : owner(spawner), plan(spawner.plan_), fds(spawner.fds_), fd_scratch(spawner.fds_.size(), -1) {
      plan.fds = fds.data();
      plan.fd_scratch = fd_scratch.data();
      plan.report = &report;
      stack_error = stack.Ensure();
    }

    // Without the mutex: only this worker's buffers and the template (read-only) are used.
    LaunchResult Spawn(int connection, const Record& r, int slot_fd) {
      if (stack_error != 0) {
        LaunchResult failed;
        failed.err = stack_error;
        failed.syscall = "mmap";
        return failed;
      }
      std::string addr;
      std::string port;
      envp.assign(owner.base_env_.begin(), owner.base_env_.end());
      if (owner.remote_env_) {
        RemoteEnvironment(r.remote, r.remote_length, &addr, &port);
        if (!addr.empty()) {
          envp.push_back(&addr[0]);
          envp.push_back(&port[0]);
        }
      }
      envp.push_back(nullptr);
      plan.envp = envp.data();
      for (size_t k : owner.connection_slots_) fds[k].parent_fd = connection;
      report = {-1, 0, 0, -1, 0};
      LaunchResult launched =
          LaunchChild(&plan, stack, slot_fd, CloneMethod::kAuto, &clone3_missing, 0);
      if (launched.err == 0 && report.step >= 0) {
        // Failed before exec: reaped here, so no exit is reported for it.
        siginfo_t info;
        while (waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(launched.pidfd), &info,
                      WEXITED | __WALL) != 0 && errno == EINTR) {
        }
        close(launched.pidfd);
        launched.pidfd = -1;
      }
      return launched;
    }

    const Spawner& owner;
    ChildPlan plan;
    std::vector<FdSpec> fds;
    std::vector<int> fd_scratch;
    std::vector<char*> envp;
    ChildReport report = {-1, 0, 0, -1, 0};
    ChildStack stack;
    int stack_error = 0;
    std::atomic<bool> clone3_missing{false};
  };
  struct Slot {
    std::string path;
    int fd;
    bool free;
    int events_fd;  // its cgroup.events, kept open: pread at 0 reads it anew (-1: open each time)
    pid_t owner = 0;  // the instance started in it last (0 while one is being cloned into it)
    // cgroup.kill was written to it: never lent again (Linux 6.18 kills every child later cloned
    // into such a group at its birth, and each spawn would pay a second clone). Removed once empty.
    bool killed = false;
  };

  // A wildcard address (0.0.0.0, ::) or a transparent socket accepts on many local addresses.
  void FindFixedLocalAddress(int listen_fd) {
    struct sockaddr_storage address = {};
    socklen_t length = sizeof(address);
    if (getsockname(listen_fd, reinterpret_cast<struct sockaddr*>(&address), &length) != 0) return;
    int transparent = 0;
    socklen_t option_length = sizeof(transparent);
    if (address.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const struct sockaddr_in*>(&address);
      if (in->sin_addr.s_addr == htonl(INADDR_ANY)) return;
      if (getsockopt(listen_fd, SOL_IP, IP_TRANSPARENT, &transparent, &option_length) != 0 || transparent != 0) {
        return;
      }
    } else if (address.ss_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const struct sockaddr_in6*>(&address);
      if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) return;
      if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr32[3] == htonl(INADDR_ANY)) return;
      if (getsockopt(listen_fd, SOL_IPV6, IPV6_TRANSPARENT, &transparent, &option_length) != 0 ||
          transparent != 0) {
        return;
      }
    } else if (address.ss_family != AF_UNIX) {
      return;
    }
    fixed_local_ = address;
    fixed_local_length_ = length;
  }

  // Under the mutex.
  void SetListening(bool on) {
    if (on == listening_ || listen_fd_ < 0) return;
    struct epoll_event ev = {};
    ev.events = kListenEvents;
    ev.data.u64 = kListenTag;
    epoll_ctl(epoll_fd_, on ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, listen_fd_, &ev);
    listening_ = on;
  }

  // Under the mutex: the listening fd's one-shot event was taken; arm it again.
  void RearmListening() {
    if (!listening_) return;
    struct epoll_event ev = {};
    ev.events = kListenEvents;
    ev.data.u64 = kListenTag;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, listen_fd_, &ev);
  }

  // Under the mutex: a pidfd whose one-shot event came before its child could be reaped.
  void RearmChild(pid_t pid, int pidfd) {
    struct epoll_event ev = {};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u64 = static_cast<uint64_t>(pid);
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, pidfd, &ev);
  }

  void Wake() {
    uint64_t one = 1;
    ssize_t ignored = write(wake_fd_, &one, sizeof(one));
    (void)ignored;
  }

  // Under the mutex: nothing more to do for any thread.
  bool Over() const { return terminating_ || (closed_ && children_.empty() && in_flight_ == 0); }

  // Schedules a delivery when records wait and none is scheduled (any lock may be held).
  void NotifyJs() {
    bool notify;
    {
      std::lock_guard<std::mutex> queue_lock(queue_mutex_);
      notify = !queue_.empty() && !delivery_scheduled_;
      if (notify) delivery_scheduled_ = true;
    }
    if (notify) {
      tsfn_.NonBlockingCall(this, [](Napi::Env env, Napi::Function callback, Spawner* self) {
        if (env != nullptr) self->Deliver(env, callback);
      });
    }
  }

  void Run() {
    // Process-directed signals (SIGCHLD, SIGTERM) go to the event loop's thread, not here.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    Worker worker(*this);
    struct epoll_event events[kMaxEvents];
    for (;;) {
      int n = epoll_wait(epoll_fd_, events, kMaxEvents, -1);
      if (n < 0 && errno != EINTR) break;
      std::unique_lock<std::mutex> lock(mutex_);
      // Once over, the wake-up eventfd is left readable: every thread sees it and ends.
      if (Over()) {
        Wake();
        break;
      }
      bool readable = false;
      for (int i = 0; i < n; i++) {
        uint64_t tag = events[i].data.u64;
        if (tag == kWakeTag) {
          uint64_t value;
          ssize_t ignored = read(wake_fd_, &value, sizeof(value));
          (void)ignored;
        } else if (tag == kListenTag) {
          readable = true;
        } else {
          Reap(static_cast<pid_t>(tag));
        }
      }
      if (readable && listening_) AcceptSome(&worker, lock);
      bool over = Over();
      if (over) Wake();
      lock.unlock();
      NotifyJs();
      if (over) break;
    }
    // Released from each thread: pending deliveries still run, then the context goes.
    tsfn_.Release();
  }

  void Enqueue(Record&& r) {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    queue_.push_back(std::move(r));
  }

  // Exits whose pidfd said so (and, with `all`, any other that is ready), under the mutex.
  void Reap(pid_t pid) {
    auto found = children_.find(pid);
    if (found == children_.end()) return;
    siginfo_t info = {};
    int rc;
    do {
      rc = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(found->second.pidfd), &info,
                  WEXITED | WNOHANG | __WALL);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0 && info.si_pid == 0) {  // not yet
      RearmChild(pid, found->second.pidfd);
      return;
    }
    Record r;
    r.kind = Record::kExited;
    r.pid = pid;
    if (rc != 0) {
      r.code = CLD_KILLED;  // someone else reaped it: the status is lost
      r.status = 0;
      r.err = errno;
    } else {
      r.code = info.si_code;
      r.status = info.si_status;
    }
    // The pidfd's only reference: closing it takes it out of the epoll set as well.
    close(found->second.pidfd);
    int slot = found->second.slot;
    children_.erase(found);
    if (slot >= 0) {
      r.slot = slots_[slot].path;
      if (SlotEmpty(slot)) {
        slots_[slot].free = true;
        // Closed: no connection will take it again. Killed: none may (Slot::killed).
        if (closed_) rmdir(slots_[slot].path.c_str());
        else if (slots_[slot].killed) RetireSlot(slot);
        else free_slots_.push_back(slot);
      } else {
        r.slot_busy = true;  // a process the instance left behind: never reused
      }
    }
    Enqueue(std::move(r));
  }

  // Exits that happened since the last wait, without waiting (before refusing at MaxConnections).
  void ReapPending() {
    struct epoll_event events[kMaxEvents];
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, 0);
    for (int i = 0; i < n; i++) {
      uint64_t tag = events[i].data.u64;
      if (tag == kListenTag) {
        RearmListening();  // this thread's accept loop goes on; others may take the next one
      } else if (tag != kWakeTag) {
        Reap(static_cast<pid_t>(tag));
      }
    }
  }

  bool SlotEmpty(int slot) {
    char text[256];
    ssize_t got;
    if (slots_[slot].events_fd >= 0) {
      got = pread(slots_[slot].events_fd, text, sizeof(text) - 1, 0);
    } else {
      int fd = openat(slots_[slot].fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
      if (fd < 0) return false;
      got = read(fd, text, sizeof(text) - 1);
      close(fd);
    }
    if (got <= 0) return false;
    text[got] = '\0';
    return strstr(text, "populated 0") != nullptr;
  }

  // An empty slot group that is never lent again: removed, its fds closed (free stays true, so
  // nothing signals it; it is in no free list).
  void RetireSlot(int slot) {
    Slot& s = slots_[slot];
    rmdir(s.path.c_str());
    if (s.events_fd >= 0) close(s.events_fd);
    if (s.fd >= 0) close(s.fd);
    s.events_fd = -1;
    s.fd = -1;
  }

  // A free slot group, or a new one; -1 with errno set.
  int TakeSlot() {
    if (!free_slots_.empty()) {
      int slot = free_slots_.back();
      free_slots_.pop_back();
      slots_[slot].free = false;
      slots_[slot].owner = 0;  // no longer the last instance's
      return slot;
    }
    for (int tries = 0; tries < 100000; tries++) {
      std::string path = slot_prefix_ + std::to_string(++slot_counter_);
      if (mkdir(path.c_str(), 0755) != 0) {
        if (errno == EEXIST) continue;  // an earlier daemon's, maybe with a live instance
        return -1;
      }
      int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        rmdir(path.c_str());
        errno = err;
        return -1;
      }
      int events_fd = openat(fd, "cgroup.events", O_RDONLY | O_CLOEXEC);
      slots_.push_back({path, fd, false, events_fd});
      return static_cast<int>(slots_.size()) - 1;
    }
    errno = EEXIST;
    return -1;
  }

  void AcceptSome(Worker* worker, std::unique_lock<std::mutex>& lock) {
    for (int i = 0; i < kAcceptsPerWakeUp && listening_; i++) {
      Record r;
      r.remote_length = sizeof(r.remote);
      int connection = accept4(listen_fd_, reinterpret_cast<struct sockaddr*>(&r.remote),
                               &r.remote_length, SOCK_CLOEXEC);
      if (i == 0) RearmListening();
      if (connection < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        // A client that gave up between SYN and accept: a normal end, not a failure.
        if (errno == ECONNABORTED || errno == EPROTO || errno == EINTR) continue;
        r.kind = Record::kAcceptError;
        r.err = errno;
        r.syscall = "accept4";
        Enqueue(std::move(r));
        // EMFILE/ENFILE/ENOBUFS: JavaScript pauses and resumes; no spinning meanwhile.
        SetListening(false);
        paused_ = true;
        return;
      }
      r.at_ms = WallMs();
      r.seq = ++accepted_;
      if (fixed_local_length_ > 0) {
        r.local = fixed_local_;
        r.local_length = fixed_local_length_;
      } else {
        r.local_length = sizeof(r.local);
        if (getsockname(connection, reinterpret_cast<struct sockaddr*>(&r.local), &r.local_length) != 0) {
          r.local_length = 0;
        }
      }
      if (r.local.ss_family == AF_UNIX) {
        struct ucred cred = {};
        socklen_t cred_length = sizeof(cred);
        if (getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &cred, &cred_length) == 0 &&
            cred_length == sizeof(cred)) {
          r.peer_pid = cred.pid;
          r.peer_uid = static_cast<int>(cred.uid);
        }
      }
      int live = static_cast<int>(children_.size()) + in_flight_;
      if (live >= max_connections_) {
        ReapPending();
        live = static_cast<int>(children_.size()) + in_flight_;
      }
      if (live >= max_connections_) {
        close(connection);
        r.kind = Record::kRefused;
        r.live = live;
        Enqueue(std::move(r));
        continue;
      }
      int slot = -1;
      if (!slot_prefix_.empty()) {
        slot = TakeSlot();
        if (slot < 0) {
          close(connection);
          r.kind = Record::kFailed;
          r.step = kStepCgroup;
          r.err = errno;
          r.syscall = "mkdir";
          r.path = slot_prefix_;
          Enqueue(std::move(r));
          continue;
        }
        r.slot = slots_[slot].path;
      }
      int slot_fd = slot >= 0 ? slots_[slot].fd : -1;
      // The clone runs without the mutex: other threads accept, reap and clone meanwhile.
      in_flight_++;
      lock.unlock();
      LaunchResult launched = worker->Spawn(connection, r, slot_fd);
      close(connection);  // the child has its own copies (or failed): its exit is the client's EOF
      lock.lock();
      in_flight_--;
      Finish(*worker, launched, slot, &r);
      Enqueue(std::move(r));
      if (in_flight_ == 0) idle_.notify_all();
      // A round's first records go out now, not after the whole round.
      NotifyJs();
    }
  }

  // Under the mutex, after a clone: the record, the child watched, a failed slot returned.
  void Finish(const Worker& worker, const LaunchResult& launched, int slot, Record* r) {
    const ChildReport& report = worker.report;
    if (launched.err != 0 || report.step >= 0) {
      if (slot >= 0) {
        slots_[slot].free = true;
        free_slots_.push_back(slot);
      }
      r->kind = Record::kFailed;
      if (launched.err != 0) {
        r->step = launched.cgroup_step ? kStepCgroup : -1;
        r->err = launched.err;
        r->syscall = launched.syscall;
        if (!launched.cgroup_step) r->path.clear();
        else r->path = r->slot;
      } else {
        r->step = report.step < kStepCount ? report.step : kStepExec;
        r->err = report.err;
        r->syscall = report.syscall > 0 && report.syscall < kSysCount ? kSyscallNames[report.syscall] : "exec";
        if (r->step == kStepExec) r->path = spec_.path;
        else if (r->step == kStepChdir) r->path = spec_.cwd;
        else if (r->step == kStepCgroup) r->path = r->slot;
      }
      return;
    }
    r->kind = Record::kStarted;
    r->pid = launched.pid;
    struct epoll_event ev = {};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.u64 = static_cast<uint64_t>(launched.pid);
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, launched.pidfd, &ev);
    children_[launched.pid] = {launched.pidfd, slot};
    if (slot >= 0) slots_[slot].owner = launched.pid;
  }

  static Napi::Object ErrorObject(Napi::Env env, const Record& r) {
    Napi::Error error = r.step >= 0
                            ? Napi::Error::New(env, std::string("failed at step ") + kExecStepNames[r.step] +
                                                        ": " + strerror(r.err))
                            : MakeSystemError(env, r.err, r.syscall != nullptr ? r.syscall : "clone");
    if (r.step >= 0) {
      char name[64];
      const char* glibc_name = strerrorname_np(r.err);
      snprintf(name, sizeof(name), "%s", glibc_name != nullptr ? glibc_name : "EIO");
      error.Set("errno", Napi::Number::New(env, -r.err));
      error.Set("code", Napi::String::New(env, name));
      error.Set("syscall", Napi::String::New(env, r.syscall != nullptr ? r.syscall : "exec"));
      error.Set("step", Napi::String::New(env, kExecStepNames[r.step]));
    }
    if (!r.path.empty()) error.Set("path", Napi::String::New(env, r.path));
    return error.Value();
  }

  // The keys and fixed values of one batch's records, made once per batch; the local address
  // object is shared by the records that have the same one (the listening address, mostly).
  struct RecordKeys {
    explicit RecordKeys(Napi::Env e)
        : env(e),
          kind(Napi::String::New(e, "kind")),
          seq(Napi::String::New(e, "seq")),
          at(Napi::String::New(e, "at")),
          local(Napi::String::New(e, "local")),
          remote(Napi::String::New(e, "remote")),
          peer_pid(Napi::String::New(e, "peerPid")),
          peer_uid(Napi::String::New(e, "peerUid")),
          pid(Napi::String::New(e, "pid")),
          cgroup(Napi::String::New(e, "cgroup")),
          cgroup_busy(Napi::String::New(e, "cgroupBusy")),
          code(Napi::String::New(e, "code")),
          status(Napi::String::New(e, "status")),
          error(Napi::String::New(e, "error")),
          live(Napi::String::New(e, "live")) {
      static const char* const names[] = {"started", "failed", "refused", "exited", "accept-error"};
      for (int i = 0; i < 5; i++) kinds[i] = Napi::String::New(e, names[i]);
    }
    Napi::Env env;
    Napi::String kind, seq, at, local, remote, peer_pid, peer_uid, pid, cgroup, cgroup_busy, code, status,
        error, live;
    Napi::String kinds[5];
    Napi::String exited, dumped, killed;  // made on first use
    // The last local address made into an object, and that object.
    struct sockaddr_storage last_local = {};
    socklen_t last_local_length = 0;
    Napi::Value last_local_object;
    std::vector<Napi::PropertyDescriptor> fields;

    Napi::String& CodeName(int c) {
      Napi::String& slot = c == CLD_EXITED ? exited : c == CLD_DUMPED ? dumped : killed;
      if (slot.IsEmpty()) {
        slot = Napi::String::New(env, c == CLD_EXITED ? "exited" : c == CLD_DUMPED ? "dumped" : "killed");
      }
      return slot;
    }
    Napi::Value Local(const Record& r) {
      if (last_local_length == 0 || r.local_length != last_local_length ||
          memcmp(&r.local, &last_local, r.local_length) != 0) {
        last_local_object = AddressToObject(env, r.local, r.local_length, -1, "getsockname");
        last_local = r.local;
        last_local_length = r.local_length;
      }
      return last_local_object;
    }
  };

  static Napi::Object ToObject(Napi::Env env, RecordKeys& k, const Record& r) {
    Napi::Object o = Napi::Object::New(env);
    std::vector<Napi::PropertyDescriptor>& f = k.fields;
    f.clear();
    f.push_back(Field(k.kind, k.kinds[r.kind]));
    if (r.kind == Record::kExited) {
      f.push_back(Field(k.pid, Napi::Number::New(env, r.pid)));
      f.push_back(Field(k.code, k.CodeName(r.code)));
      f.push_back(Field(k.status, Napi::Number::New(env, r.status)));
      if (!r.slot.empty()) f.push_back(Field(k.cgroup, Napi::String::New(env, r.slot)));
      if (r.slot_busy) f.push_back(Field(k.cgroup_busy, Napi::Boolean::New(env, true)));
      // waitid failed (someone else reaped it): the status is unknown.
      if (r.err != 0) f.push_back(Field(k.error, MakeSystemError(env, r.err, "waitid").Value()));
      o.DefineProperties(f);
      return o;
    }
    if (r.kind == Record::kAcceptError) {
      f.push_back(Field(k.error, MakeSystemError(env, r.err, r.syscall).Value()));
      o.DefineProperties(f);
      return o;
    }
    f.push_back(Field(k.seq, Napi::Number::New(env, static_cast<double>(r.seq))));
    f.push_back(Field(k.at, Napi::Number::New(env, r.at_ms)));
    // An address the kernel reports in a family we cannot show is left out, not fatal.
    try {
      if (r.local_length > 0) f.push_back(Field(k.local, k.Local(r)));
      f.push_back(Field(k.remote, AddressToObject(env, r.remote, r.remote_length, -1, "accept4")));
    } catch (const Napi::Error&) {
    }
    f.push_back(Field(k.peer_pid, Napi::Number::New(env, r.peer_pid)));
    f.push_back(Field(k.peer_uid, Napi::Number::New(env, r.peer_uid)));
    if (r.kind == Record::kStarted) {
      f.push_back(Field(k.pid, Napi::Number::New(env, r.pid)));
      if (!r.slot.empty()) f.push_back(Field(k.cgroup, Napi::String::New(env, r.slot)));
    } else if (r.kind == Record::kFailed) {
      f.push_back(Field(k.error, ErrorObject(env, r)));
    } else if (r.kind == Record::kRefused) {
      f.push_back(Field(k.live, Napi::Number::New(env, r.live)));
    }
    o.DefineProperties(f);
    return o;
  }

  napi_env env_ = nullptr;
  std::mutex mutex_;
  std::condition_variable idle_;
  int in_flight_ = 0;  // clones under way (the mutex is not held meanwhile)
  std::vector<std::thread> threads_;
  Napi::ThreadSafeFunction tsfn_;
  int listen_fd_ = -1;
  // The listening socket's own address when every connection has it as its local address (a
  // specific IP address without IP_TRANSPARENT, or a unix socket): no getsockname per connection.
  struct sockaddr_storage fixed_local_ = {};
  socklen_t fixed_local_length_ = 0;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int null_fd_ = -1;
  bool listening_ = false;
  bool paused_ = false;
  bool closed_ = false;
  bool terminating_ = false;
  // queue_ and delivery_scheduled_: taken briefly by both threads, never across an accept or a clone.
  std::mutex queue_mutex_;
  bool delivery_scheduled_ = false;
  int max_connections_ = 64;
  bool remote_env_ = false;
  uint64_t accepted_ = 0;
  std::vector<Record> queue_;
  std::unordered_map<pid_t, Child> children_;
  // The template and the per-spawn parts of the child's plan (one spawn at a time).
  PlanSpec spec_;
  std::vector<char*> argv_;
  std::vector<char*> base_env_;
  std::string oom_text_;
  std::vector<FdSpec> fds_;  // the template's; each worker copies them
  std::vector<size_t> connection_slots_;
  std::vector<int> gap_fds_;
  ChildPlan plan_ = {};
  // cgroup slot groups: "<pool>.slot-f<n>", reused while found empty after an exit.
  std::string slot_prefix_;
  uint64_t slot_counter_ = 0;
  std::vector<Slot> slots_;
  std::vector<int> free_slots_;

 public:
  // Spare slot groups are removed when the spawner is over (busy ones stay).
  void RemoveFreeSlots() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (int slot : free_slots_) rmdir(slots_[slot].path.c_str());
    free_slots_.clear();
  }
};

}  // namespace

void CloseAcceptSpawners(napi_env env) {
  std::vector<std::shared_ptr<Spawner>> mine;
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    if (registry == nullptr) return;
    for (auto it = registry->begin(); it != registry->end();) {
      if ((*it)->env() == env) {
        mine.push_back(*it);
        it = registry->erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& spawner : mine) {
    spawner->Terminate();
    spawner->RemoveFreeSlots();
  }
}

Napi::Value StartAcceptSpawn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntegerArgument(env, info[0], "fd", 0, INT_MAX));
  if (!info[2].IsObject() || info[2].IsArray() || info[2].IsFunction()) {
    throw MakeArgumentError(env, "The \"options\" argument must be an object");
  }
  if (!info[3].IsFunction()) throw MakeArgumentError(env, "The \"onRecords\" argument must be a function");
  auto spawner = std::make_shared<Spawner>();
  spawner->Prepare(env, fd, info[1], info[2].As<Napi::Object>());
  spawner->callback_ref_ = Napi::Persistent(info[3].As<Napi::Function>());
  spawner->Start(env, info[3].As<Napi::Function>());
  {
    std::lock_guard<std::mutex> lock(registry_mutex);
    if (registry == nullptr) registry = new std::set<std::shared_ptr<Spawner>>();
    registry->insert(spawner);
  }
  std::weak_ptr<Spawner> weak = spawner;
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("pause", Napi::Function::New(env, [weak](const Napi::CallbackInfo& call) {
               if (auto s = weak.lock()) {
                 s->Pause();
                 s->Flush(call.Env());
               }
             }));
  handle.Set("resume", Napi::Function::New(env, [weak](const Napi::CallbackInfo&) {
               if (auto s = weak.lock()) s->Resume();
             }));
  handle.Set("close", Napi::Function::New(env, [weak](const Napi::CallbackInfo& call) {
               auto s = weak.lock();
               if (!s) return;
               s->Close();
               s->Flush(call.Env());
               s->RemoveFreeSlots();
             }));
  handle.Set("signal", Napi::Function::New(env, [weak](const Napi::CallbackInfo& call) -> Napi::Value {
               Napi::Env e = call.Env();
               int pid = static_cast<int>(IntegerArgument(e, call[0], "pid", 1, INT_MAX));
               int signal = static_cast<int>(IntegerArgument(e, call[1], "signal", 0, 64));
               auto s = weak.lock();
               return Napi::Boolean::New(e, s && s->Signal(pid, signal));
             }));
  handle.Set("signalGroup", Napi::Function::New(env, [weak](const Napi::CallbackInfo& call) -> Napi::Value {
               Napi::Env e = call.Env();
               int pid = static_cast<int>(IntegerArgument(e, call[0], "pid", 1, INT_MAX));
               int signal = static_cast<int>(IntegerArgument(e, call[1], "signal", 0, 64));
               auto s = weak.lock();
               // null: the spawner is gone, and with it any reuse of its groups.
               if (!s) return e.Null();
               return Napi::Boolean::New(e, s->SignalGroup(pid, signal));
             }));
  handle.Set("live", Napi::Function::New(env, [weak](const Napi::CallbackInfo& call) -> Napi::Value {
               auto s = weak.lock();
               return Napi::Number::New(call.Env(), s ? s->Live() : 0);
             }));
  handle.Set("setMaxConnections", Napi::Function::New(env, [weak](const Napi::CallbackInfo& call) {
               int max = static_cast<int>(IntegerArgument(call.Env(), call[0], "max", 0, INT_MAX));
               if (auto s = weak.lock()) s->SetMaxConnections(max);
             }));
  handle.Set("flush", Napi::Function::New(env, [weak](const Napi::CallbackInfo& call) {
               if (auto s = weak.lock()) s->Flush(call.Env());
             }));
  return handle;
}

}  // namespace triggerd
