// The JavaScript UeventSocket: owns a bound uevent fd, watches it with uv_poll on the
// environment's own loop, and on each wake-up drains it into one batch for `onBatch`.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "../common/fd_poller.h"
#include "uevent_fd.h"

namespace triggerd {

class NetlinkAddon;

class UeventSocket : public Napi::ObjectWrap<UeventSocket>, private FdPollerClient {
 public:
  // One wake-up delivers at most this many items or (about) this many payload bytes; the rest
  // stays in the kernel's buffer and uv_poll, being level-triggered, wakes us again.
  static constexpr uint32_t kMaxBatchItems = 4096;
  static constexpr size_t kMaxBatchBytes = 4 * 1024 * 1024;
  // Well above a kernel uevent (UEVENT_BUFFER_SIZE is 2 KiB) or a libudev message; a datagram
  // that does not fit is reported as MSG_TRUNC, never handed over cut short.
  static constexpr size_t kMaxDatagramBytes = 16 * 1024;

  static Napi::Function DefineClass(Napi::Env env);
  // Wraps an opened fd in a new UeventSocket and starts watching it. Takes the fd in every case:
  // on failure it is closed and the error thrown.
  static Napi::Object Create(Napi::Env env, NetlinkAddon* addon,
                             const Napi::FunctionReference& socket_class, UeventFd* opened,
                             Napi::Function on_batch, Napi::Function on_error);

  // JavaScript cannot construct one itself: only Create() leaves an fd pending for it.
  // Only objects this class made: accessors called on a foreign `this` reach Unwrap too
  // (see common/instance_tag.h).
  static UeventSocket* Unwrap(Napi::Object object);

  explicit UeventSocket(const Napi::CallbackInfo& info);
  ~UeventSocket() override;

  // Stops watching and closes the fd without calling into JavaScript, so it is safe from the
  // destructor and from the environment's teardown. Idempotent.
  void CloseNative();

 private:
  // FdPollerClient
  void OnReadable(int status) override;
  void OnEnvironmentTeardown() override;

  void Start(Napi::Env env);
  void HandleWakeUp(int status);
  // Reads until EAGAIN or a bound into `batch`; returns 0 or the errno of a failed recvmsg.
  int Drain(Napi::Env env, Napi::Array batch);
  void CallBack(Napi::FunctionReference& callback, napi_value argument);
  // Holds a strong reference to the JS object while it is watched (so onBatch can run however
  // the caller keeps it); paused or closed, it may be garbage collected, which closes the fd.
  void UpdateStrongReference();
  void ReleaseCallbacks();

  Napi::Value GetPortId(const Napi::CallbackInfo& info);
  Napi::Value GetReceiveBufferBytes(const Napi::CallbackInfo& info);
  void Pause(const Napi::CallbackInfo& info);
  void Resume(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  void RefLoop(const Napi::CallbackInfo& info);
  void UnrefLoop(const Napi::CallbackInfo& info);

  int fd_ = -1;
  uint32_t port_id_ = 0;
  int receive_buffer_bytes_ = 0;
  FdPoller poller_;
  bool paused_ = false;
  bool strong_reference_ = false;
  bool in_callback_ = false;
  Napi::FunctionReference on_batch_;
  Napi::FunctionReference on_error_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
  std::unique_ptr<uint8_t[]> receive_buffer_;
};

}  // namespace triggerd
