// The JavaScript UeventSocket: owns a bound uevent fd, watches it with uv_poll on the
// environment's own loop, and on each wake-up drains it into one batch for `onBatch`.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "../common/polled_fd_handle.h"
#include "uevent_fd.h"

namespace triggerd {

class NetlinkAddon;

class UeventSocket : public PolledFdHandle<UeventSocket, NetlinkAddon, UeventFd> {
 public:
  // One wake-up delivers at most this many items or (about) this many payload bytes; the rest
  // stays in the kernel's buffer and uv_poll, being level-triggered, wakes us again.
  static constexpr uint32_t kMaxBatchItems = 4096;
  static constexpr size_t kMaxBatchBytes = 4 * 1024 * 1024;
  // Well above a kernel uevent (UEVENT_BUFFER_SIZE is 2 KiB) or a libudev message; a datagram
  // that does not fit is reported as MSG_TRUNC, never handed over cut short.
  static constexpr size_t kMaxDatagramBytes = 16 * 1024;

  static constexpr napi_type_tag kTypeTag = {0xe48c1aaad796d450ULL, 0x5e8d8ac507c3d48bULL};
  static constexpr const char* kClassName = "UeventSocket";
  static constexpr const char* kCreatedBy = "UeventSocket is created by openUeventSocket()";

  static Napi::Function DefineClass(Napi::Env env);

  // Made by openUeventSocket() only, with an opened fd (PolledFdAddon::CreateHandle).
  explicit UeventSocket(const Napi::CallbackInfo& info);

 private:
  friend Base;

  void Adopt(UeventFd* opened);
  void OnWakeUp(Napi::Env env, int status);
  // Reads until EAGAIN or a bound into `batch`; returns 0 or the errno of a failed recvmsg.
  int Drain(Napi::Env env, Napi::Array batch);

  Napi::Value GetPortId(const Napi::CallbackInfo& info);
  Napi::Value GetReceiveBufferBytes(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);

  uint32_t port_id_ = 0;
  int receive_buffer_bytes_ = 0;
  std::unique_ptr<uint8_t[]> receive_buffer_;
};

}  // namespace triggerd
