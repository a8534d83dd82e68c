// Per-environment state of triggerd_spawn.node (napi instance data): the child stack, the
// children this environment spawned (pid -> pidfd) and its child-exit watcher, if any.
#pragma once

#include <napi.h>
#include <sys/types.h>

#include <cstdint>
#include <unordered_map>

#include "spawn_child.h"

namespace triggerd {

class ChildWatcher;

class SpawnAddon : public Napi::Addon<SpawnAddon> {
 public:
  SpawnAddon(Napi::Env env, Napi::Object exports);
  ~SpawnAddon();

  SpawnAddon(const SpawnAddon&) = delete;
  SpawnAddon& operator=(const SpawnAddon&) = delete;

  // A reaped child: stop polling and close its pidfd. Returns whether we spawned it.
  bool ForgetChild(pid_t pid);
  // The watcher says it is closing; the addon forgets it.
  void WatcherClosing(ChildWatcher* watcher);
  const std::unordered_map<pid_t, int>& children() const { return children_; }

 private:
  Napi::Value Spawn(const Napi::CallbackInfo& info);
  void SetSubreaper(const Napi::CallbackInfo& info);
  Napi::Value IsSubreaper(const Napi::CallbackInfo& info);
  Napi::Value WatchChildren(const Napi::CallbackInfo& info);
  void PidfdSendSignal(const Napi::CallbackInfo& info);
  void Kill(const Napi::CallbackInfo& info);
  void CloseFd(const Napi::CallbackInfo& info);
  Napi::Value Pipe(const Napi::CallbackInfo& info);
  void SetCloneMethodForTesting(const Napi::CallbackInfo& info);

  ChildWatcher* WatcherById(uint64_t id) const;

  ChildStack stack_;
  // Own children not yet reaped; the pidfd is -1 once closeFd() took it back.
  std::unordered_map<pid_t, int> children_;
  ChildWatcher* watcher_ = nullptr;
  uint64_t next_watcher_id_ = 1;
  int last_cap_ = 40;
  CloneMethod clone_method_ = CloneMethod::kAuto;
  bool clone3_missing_ = false;
};

}  // namespace triggerd
