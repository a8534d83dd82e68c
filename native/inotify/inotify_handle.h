// The JavaScript InotifyHandle: owns one inotify fd (IN_NONBLOCK | IN_CLOEXEC), adds and removes
// watches, watches the fd with uv_poll on the environment's own loop, and on each wake-up drains
// it into one Buffer of raw inotify_event records for `onBatch`. It parses nothing: TypeScript
// does (parseInotifyRecords). IN_Q_OVERFLOW arrives as a record like any other.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../common/fd_poller.h"

namespace triggerd {

class InotifyAddon;

class InotifyHandle : public Napi::ObjectWrap<InotifyHandle>, private FdPollerClient {
 public:
  // One read() gets at most this much; far above one record (16 + NAME_MAX + 1 bytes).
  static constexpr size_t kReadBytes = 64 * 1024;
  // One wake-up hands over at most this much; the rest waits in the kernel's queue (bounded by
  // fs.inotify.max_queued_events, beyond which the kernel queues IN_Q_OVERFLOW) and uv_poll,
  // level-triggered, wakes us again.
  static constexpr size_t kMaxBatchBytes = 1024 * 1024;

  static Napi::Function DefineClass(Napi::Env env);
  // Wraps an inotify fd in a new InotifyHandle and starts watching it. Takes the fd in every
  // case: on failure it is closed and the error thrown.
  static Napi::Object Create(Napi::Env env, InotifyAddon* addon,
                             const Napi::FunctionReference& handle_class, int fd,
                             Napi::Function on_batch, Napi::Function on_error);

  // Only objects this class made: accessors called on a foreign `this` reach Unwrap too
  // (see common/instance_tag.h).
  static InotifyHandle* Unwrap(Napi::Object object);

  explicit InotifyHandle(const Napi::CallbackInfo& info);
  ~InotifyHandle() override;

  // Stops watching and closes the fd without calling into JavaScript (safe from the destructor
  // and from the environment's teardown). Idempotent.
  void CloseNative();

 private:
  // FdPollerClient
  void OnReadable(int status) override;
  void OnEnvironmentTeardown() override;

  void Start(Napi::Env env);
  void HandleWakeUp(int status);
  // Reads until EAGAIN or kMaxBatchBytes into `out`; returns 0 or the errno of a failed read.
  int Drain(std::vector<uint8_t>* out);
  bool CallBack(Napi::FunctionReference& callback, napi_value argument);
  void UpdateStrongReference();
  void ReleaseCallbacks();

  Napi::Value AddWatch(const Napi::CallbackInfo& info);
  void RemoveWatch(const Napi::CallbackInfo& info);
  void Pause(const Napi::CallbackInfo& info);
  void Resume(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  void RefLoop(const Napi::CallbackInfo& info);
  void UnrefLoop(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);

  int fd_ = -1;
  FdPoller poller_;
  bool paused_ = false;
  bool strong_reference_ = false;
  bool in_callback_ = false;
  Napi::FunctionReference on_batch_;
  Napi::FunctionReference on_error_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
  std::unique_ptr<uint8_t[]> read_buffer_;
};

}  // namespace triggerd
