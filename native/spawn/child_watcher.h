// The child-exit watcher: a uv_signal_t for SIGCHLD (orphans reparented to us as a subreaper)
// plus one uv_poll_t per own child's pidfd, all on the environment's own loop. Every wake-up
// reaps what is there with waitid(P_ALL, WEXITED | WNOHANG) and hands JavaScript one batch.
#pragma once

#include <napi.h>
#include <sys/types.h>
#include <uv.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace triggerd {

class SpawnAddon;

class ChildWatcher {
 public:
  // One wake-up reaps at most this many children; a timer wakes us again for the rest (the
  // kernel keeps them as zombies meanwhile, so nothing is lost).
  static constexpr uint32_t kMaxExitsPerBatch = 1024;

  // Starts watching; throws (a system error, or ERR_WATCHER_ACTIVE when the process already has
  // a watcher) with nothing left behind.
  // `handle` (the object watchChildren() returns) is `this` for onExits.
  static ChildWatcher* Start(Napi::Env env, SpawnAddon* addon, Napi::Function on_exits,
                             Napi::Object handle, uint64_t id);

  ChildWatcher(const ChildWatcher&) = delete;
  ChildWatcher& operator=(const ChildWatcher&) = delete;

  uint64_t id() const { return id_; }
  // Best effort: when a pidfd cannot be polled, SIGCHLD still reports the child.
  void WatchPidfd(pid_t pid, int pidfd);
  void UnwatchPidfd(pid_t pid);
  // Stops watching and closes the handles without calling into JavaScript. Idempotent. The
  // object deletes itself once libuv has finished closing every handle.
  void Close();
  void SetReferenced(bool referenced);
  // Look again on the next turn of the loop (exits that were held back are ready).
  void WakeSoon();
  // closeFd() of a pidfd whose exit the batch being delivered reports: the caller closes it now,
  // so it is not closed again after onExits. Whether it was one.
  bool TakeBackBatchPidfd(int fd);

 private:

  ChildWatcher(napi_env env, SpawnAddon* addon, uint64_t id);
  ~ChildWatcher();

  static void OnSignal(uv_signal_t* handle, int signum);
  static void OnTimer(uv_timer_t* handle);
  static void OnPoll(uv_poll_t* handle, int status, int events);
  static void OnHandleClosed(uv_handle_t* handle);
  static void OnEnvironmentTeardown(napi_async_cleanup_hook_handle hook, void* data);

  void HandleWakeUp(pid_t polled_pid);
  uint32_t Drain(Napi::Env env, Napi::Array batch);
  void HandleClosed();
  void ReleaseJs();

  napi_env env_;
  SpawnAddon* addon_;  // nullptr once closing
  uint64_t id_;
  uv_signal_t signal_;
  uv_timer_t timer_;
  // The children's pidfds sit in one epoll set of our own, which libuv polls as a single fd:
  // a child costs one epoll_ctl instead of a uv_poll's init, checks, add and delete.
  int pidfds_epoll_ = -1;
  uv_poll_t pidfds_poll_;
  bool pidfds_polled_ = false;
  std::unordered_map<pid_t, int> pidfds_;
  int open_handles_ = 0;
  bool closing_ = false;
  bool tearing_down_ = false;
  bool referenced_ = true;
  bool in_callback_ = false;
  // The pidfds of the batch being delivered, closed once onExits has returned (see HandleWakeUp).
  std::vector<int> batch_pidfds_;
  Napi::FunctionReference on_exits_;
  Napi::ObjectReference receiver_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
  napi_async_cleanup_hook_handle cleanup_hook_ = nullptr;

  // waitid(P_ALL) reaps the whole process's children, so two watchers (two worker threads)
  // would steal each other's exits: one per process.
  static std::atomic<bool> process_has_watcher_;
};

}  // namespace triggerd
