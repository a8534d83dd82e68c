// The JavaScript AutofsMount: one autofs mount made by mountAutofs(). It owns the read end of the
// packet pipe (watched with uv_poll on the environment's own loop; each wake-up reads up to
// kMaxPacketsPerBatch packets and hands them to `onBatch` as raw Buffers, unparsed: TypeScript
// parses them) and a /dev/autofs control fd through which it answers tokens (READY/FAIL), sets
// the idle timeout, runs expire on a thread of its own, and turns the mount catatonic. The
// mount point is opened (OPENMOUNT) per command and closed at once: an open fd would keep the
// mount busy, so it would never expire.
#pragma once

#include <napi.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "../common/fd_poller.h"

namespace triggerd {

class AutofsAddon;
struct PendingAutofsMount;

class AutofsMount : public Napi::ObjectWrap<AutofsMount>, private FdPollerClient {
 public:
  // A v5 packet is 300 bytes (304 with the padding of 64-bit ABIs). The pipe is in packet mode:
  // a read returns one packet and drops what does not fit, so read with room to spare.
  static constexpr size_t kReadBytes = 512;
  // The rest waits in the pipe (the kernel's writers block meanwhile: the pipe is the bound).
  static constexpr size_t kMaxPacketsPerBatch = 256;

  static Napi::Function DefineClass(Napi::Env env);
  // Wraps a mounted autofs in a new AutofsMount and starts watching its pipe. Takes the fds in
  // every case: on failure they are closed (the mount stays; the caller unmounts).
  static Napi::Object Create(Napi::Env env, AutofsAddon* addon,
                             const Napi::FunctionReference& mount_class,
                             const PendingAutofsMount& pending, Napi::Function on_batch,
                             Napi::Function on_error);

  // Only objects this class made: accessors called on a foreign `this` reach Unwrap too
  // (see common/instance_tag.h).
  static AutofsMount* Unwrap(Napi::Object object);

  explicit AutofsMount(const Napi::CallbackInfo& info);
  ~AutofsMount() override;

  // Stops watching and closes both fds without calling into JavaScript. Idempotent. The kernel
  // keeps the mount; with the pipe's read end gone its next write fails and it turns catatonic.
  void CloseNative();

 private:
  void OnReadable(int status) override;
  void OnEnvironmentTeardown() override;

  void Start(Napi::Env env);
  void HandleWakeUp(int status);
  bool CallBack(Napi::FunctionReference& callback, napi_value argument);
  void UpdateStrongReference();
  void ReleaseCallbacks();
  // OPENMOUNT, `command(ioctl_fd)`, CLOSEMOUNT; returns 0 or a positive errno.
  template <typename Command>
  int WithMountFd(Command command, const char** failed);
  void ThrowCommandError(Napi::Env env, int err, const char* syscall);

  void Ready(const Napi::CallbackInfo& info);
  void Fail(const Napi::CallbackInfo& info);
  void SetTimeout(const Napi::CallbackInfo& info);
  void Expire(const Napi::CallbackInfo& info);
  void Catatonic(const Napi::CallbackInfo& info);
  Napi::Value AskUmount(const Napi::CallbackInfo& info);
  Napi::Value Unmount(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  void RefLoop(const Napi::CallbackInfo& info);
  void UnrefLoop(const Napi::CallbackInfo& info);
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  Napi::Value GetDevId(const Napi::CallbackInfo& info);
  Napi::Value GetWhere(const Napi::CallbackInfo& info);
  Napi::Value GetPipeFd(const Napi::CallbackInfo& info);
  Napi::Value GetStrictExpire(const Napi::CallbackInfo& info);
  Napi::Value GetProtocol(const Napi::CallbackInfo& info);

  int pipe_fd_ = -1;
  int control_fd_ = -1;
  std::string where_;
  dev_t devid_ = 0;
  bool strict_expire_ = false;
  uint32_t proto_version_ = 0;
  uint32_t proto_sub_version_ = 0;
  FdPoller poller_;
  bool strong_reference_ = false;
  bool in_callback_ = false;
  Napi::FunctionReference on_batch_;
  Napi::FunctionReference on_error_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
};

}  // namespace triggerd
