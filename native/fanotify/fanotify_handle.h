// The JavaScript FanotifyHandle: owns one fanotify group fd (FAN_CLOEXEC | FAN_NONBLOCK), adds
// and removes marks, watches the fd with uv_poll on the environment's own loop, and on each
// wake-up drains it into one Buffer of raw fanotify_event_metadata records (with their info
// records) for `onBatch`. It parses nothing for JavaScript: TypeScript does
// (parseFanotifyRecords). FAN_Q_OVERFLOW arrives as a record like any other.
//
// The one thing C++ reads in a batch is each record's fixed header (event_len, fd), bounds
// checked, to know which event fds it has just created in this process: those are the only fds
// respond() and closeEventFd() accept, and close() closes whatever is left of them.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "../common/polled_fd_handle.h"

namespace triggerd {

class FanotifyAddon;

class FanotifyHandle : public PolledFdHandle<FanotifyHandle, FanotifyAddon> {
 public:
  // One read() gets at most this much (the kernel returns whole events only; the largest, with a
  // directory handle and a name, is far below 4 KiB).
  static constexpr size_t kReadBytes = 64 * 1024;
  // One wake-up hands over at most this much; the rest waits in the kernel's queue (bounded by
  // fs.fanotify.max_queued_events, beyond which the kernel queues FAN_Q_OVERFLOW).
  static constexpr size_t kMaxBatchBytes = 1024 * 1024;
  // Event fds this handle may hold open before it stops reading (backpressure: the events wait
  // in the kernel's queue until TypeScript closes some). A read may overshoot it by one buffer.
  static constexpr size_t kMaxOwnedEventFds = 8192;

  static constexpr napi_type_tag kTypeTag = {0x24ef10a3e8ccbe93ULL, 0xbef8143c9d603eb2ULL};
  static constexpr const char* kClassName = "FanotifyHandle";
  static constexpr const char* kCreatedBy = "FanotifyHandle is created by openFanotify()";

  static Napi::Function DefineClass(Napi::Env env);
  // FanotifyError: MakeSystemError with glibc's errno name where libuv has none (ESTALE).
  static Napi::Error MakeError(Napi::Env env, int err, const char* syscall);

  // Made by openFanotify() only, with a group fd (PolledFdAddon::CreateHandle).
  explicit FanotifyHandle(const Napi::CallbackInfo& info);
  ~FanotifyHandle() override;

 private:
  friend Base;

  // Closes the group fd (the kernel then allows every permission event still waiting for an
  // answer), the event fds and the mount fds.
  void CloseFds();
  void OnWakeUp(Napi::Env env, int status);
  // Reads until EAGAIN, kMaxBatchBytes or kMaxOwnedEventFds into `out`; returns 0 or the errno
  // of a failed read.
  int Drain(std::vector<uint8_t>* out);
  // Records the event fds of the whole records in [data, data + size).
  void TakeEventFds(const uint8_t* data, size_t size);
  // Starts or stops the poller as pause()/resume() and the owned-fd backpressure want it;
  // returns 0 or the libuv error of a failed restart.
  int UpdateThrottle();
  int OwnedEventFd(Napi::Env env, const Napi::Value& value, const char* syscall);

  Napi::Value Mark(const Napi::CallbackInfo& info);
  void Respond(const Napi::CallbackInfo& info);
  void CloseEventFd(const Napi::CallbackInfo& info);
  Napi::Value OpenMount(const Napi::CallbackInfo& info);
  void CloseMount(const Napi::CallbackInfo& info);
  Napi::Value ResolveFileHandle(const Napi::CallbackInfo& info);
  // pause()/resume() go through the throttle (paused_ is pause()'s, throttled_ the backpressure's).
  void Pause(const Napi::CallbackInfo& info);
  void Resume(const Napi::CallbackInfo& info);
  Napi::Value GetOwnedEventFds(const Napi::CallbackInfo& info);
  Napi::Value GetThrottled(const Napi::CallbackInfo& info);

  bool throttled_ = false;  // by kMaxOwnedEventFds
  bool polling_ = true;     // the poller's actual state
  std::unique_ptr<uint8_t[]> read_buffer_;
  std::unordered_set<int> event_fds_;
  std::unordered_set<int> mount_fds_;
};

}  // namespace triggerd
