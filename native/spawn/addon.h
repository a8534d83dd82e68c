// Per-environment state of triggerd_spawn.node (napi instance data): the child stack, the
// children this environment spawned (pid -> pidfd) and its child-exit watcher, if any.
#pragma once

#include <napi.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "spawn_child.h"
#include "spawn_fd_cache.h"
#include "spawn_plan.h"

namespace triggerd {

class ChildWatcher;
class SpawnWork;
class PreparedLaunch;
struct PreparedSpawn;

// An exit reaped while spawnAsync() calls were on their way, reported once they are over.
struct ReadyExit {
  pid_t pid;
  int code;  // CLD_*
  int status;
  bool own;
};

class SpawnAddon : public Napi::Addon<SpawnAddon> {
 public:
  SpawnAddon(Napi::Env env, Napi::Object exports);
  ~SpawnAddon();

  SpawnAddon(const SpawnAddon&) = delete;
  SpawnAddon& operator=(const SpawnAddon&) = delete;

  // What the spawn threads share with the environment (and outlive it with, while they run).
  struct Shared {
    std::mutex mutex;
    std::vector<std::unique_ptr<ChildStack>> stacks;  // free child stacks
    std::atomic<bool> clone3_missing{false};
    std::unique_ptr<ChildStack> TakeStack();
    void ReturnStack(std::unique_ptr<ChildStack> stack);
  };

  // A reaped child: stop polling and close its pidfd, or hand the pidfd to `close_later` (the
  // caller closes it). Returns whether we spawned it.
  bool ForgetChild(pid_t pid, std::vector<int>* close_later = nullptr);
  // The watcher says it is closing; the addon forgets it.
  void WatcherClosing(ChildWatcher* watcher);
  const std::unordered_map<pid_t, int>& children() const { return children_; }
  // A spawned child: remember it and poll its pidfd.
  void AdoptChild(pid_t pid, int pidfd);
  // A spawnAsync() work is gone (delivered or not).
  void WorkOver(SpawnWork* work);

  // The watcher reaped a pid that is not (yet) an own child. While spawnAsync() calls are on
  // their way it may be one of theirs: the exit is held back (true) until they are over.
  bool DeferExit(pid_t pid, int code, int status);
  // A spawnAsync() is over: `pid` its child (-1 when it failed). A held-back exit of that pid
  // becomes an own child's exit; others become orphans' once no spawn that was on its way when
  // they were reaped is left.
  void SpawnOver(uint64_t seq, pid_t pid);
  std::vector<ReadyExit> TakeReadyExits(size_t max);
  const PlanKeys& plan_keys() const { return *plan_keys_; }
  SpawnFdCache* fd_cache() { return &fd_cache_; }
  // prepare()'s objects still alive, told when the addon goes first.
  std::unordered_set<PreparedLaunch*>& launches() { return launches_; }
  // Clones and execs `p` (its fds bound) on this thread; a child that exec'd is adopted, a
  // failure kept in `p` (SpawnFailure). spawn() and a prepared launch. No JavaScript.
  void Launch(PreparedSpawn* p, bool yield_after);
  // A prepared launch is over with `p`. A parked child's stack and plan stay until it has
  // exec'd or exited (it shares our memory); the rest is freed now.
  void BuryParked(std::unique_ptr<PreparedSpawn> p);
  uint64_t StartSpawn() {
    in_flight_.insert(next_seq_);
    return next_seq_++;
  }

 private:
  Napi::Value Spawn(const Napi::CallbackInfo& info);
  void SpawnAsync(const Napi::CallbackInfo& info);
  Napi::Value Prepare(const Napi::CallbackInfo& info);
  void SetSubreaper(const Napi::CallbackInfo& info);
  Napi::Value IsSubreaper(const Napi::CallbackInfo& info);
  Napi::Value WatchChildren(const Napi::CallbackInfo& info);
  void PidfdSendSignal(const Napi::CallbackInfo& info);
  void Kill(const Napi::CallbackInfo& info);
  void CloseFd(const Napi::CallbackInfo& info);
  Napi::Value Pipe(const Napi::CallbackInfo& info);
  Napi::Value ForgetCgroup(const Napi::CallbackInfo& info);
  void SetCloneMethodForTesting(const Napi::CallbackInfo& info);

  ChildWatcher* WatcherById(uint64_t id) const;

  ChildStack stack_;
  std::unique_ptr<PlanKeys> plan_keys_;
  // spawn()'s /dev/null and cgroup directory fds, kept open between calls.
  SpawnFdCache fd_cache_;
  uint64_t ignored_signals_ = 0;
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  // spawnAsync() calls not yet delivered.
  std::unordered_set<SpawnWork*> works_;
  // Own children not yet reaped; the pidfd is -1 once closeFd() took it back.
  std::unordered_map<pid_t, int> children_;
  // spawnAsync() sequence numbers: issued, and those not over yet.
  uint64_t next_seq_ = 1;
  std::set<uint64_t> in_flight_;
  struct DeferredExit {
    ReadyExit exit;
    uint64_t last_seq;  // the newest spawn issued when it was reaped: only up to it can match
  };
  std::vector<DeferredExit> deferred_;
  std::vector<ReadyExit> ready_;
  ChildWatcher* watcher_ = nullptr;
  uint64_t next_watcher_id_ = 1;
  int last_cap_ = 40;
  CloneMethod clone_method_ = CloneMethod::kAuto;
  Napi::FunctionReference prepared_class_;
  std::unordered_set<PreparedLaunch*> launches_;
  // Parked children's stacks and plans not freed yet (BuryParked), swept as they exec or exit.
  std::vector<std::unique_ptr<PreparedSpawn>> parked_graves_;
  void SweepParked();
};

}  // namespace triggerd
