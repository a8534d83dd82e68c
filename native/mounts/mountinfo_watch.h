// The JavaScript MountInfoWatch: owns one fd of /proc/self/mountinfo (O_RDONLY | O_CLOEXEC) and
// watches it for POLLPRI with uv_poll on the environment's own loop. The kernel reports a change
// of the mount table as POLLERR | POLLPRI on that fd (fs/proc_namespace.c mounts_poll), and it
// does so from ->poll itself: every poll call that sees a new event counter *consumes* it. epoll
// polls an fd once when it is added and again when it hands out events, so a change that is
// only discovered by the add-time poll is lost. Hence two rules: the watch is never paused and
// re-added (it stays registered from start to close), and the reader reads the table once after
// the loop has registered the fd (the first turn of the loop), so a change before that is in the
// table it reads. Each wake-up calls `onChange` once; reading and coalescing are JavaScript's.
// It reads and parses nothing.
#pragma once

#include <napi.h>
#include <uv.h>

#include "../common/polled_fd_handle.h"

namespace triggerd {

class MountsAddon;

class MountInfoWatch : public PolledFdHandle<MountInfoWatch, MountsAddon> {
 public:
  static constexpr napi_type_tag kTypeTag = {0x23ca26ee1b801ee8ULL, 0xd6b3f81121f7aab5ULL};
  static constexpr const char* kClassName = "MountInfoWatch";
  static constexpr const char* kCreatedBy = "MountInfoWatch is created by watchMountInfo()";
  // POLLPRI only: the file is always POLLIN (it is a seq_file), so UV_READABLE would spin.
  static constexpr int kPollEvents = UV_PRIORITIZED;

  static Napi::Function DefineClass(Napi::Env env);

  // Made by watchMountInfo() only, with an open fd (PolledFdAddon::CreateHandle).
  explicit MountInfoWatch(const Napi::CallbackInfo& info);

 private:
  friend Base;

  void OnWakeUp(Napi::Env env, int status);

  Napi::Value GetWakeups(const Napi::CallbackInfo& info);

  double wakeups_ = 0;
};

}  // namespace triggerd
