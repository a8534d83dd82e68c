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
#include <string>

#include "../common/polled_fd_handle.h"

namespace triggerd {

class AutofsAddon;

// What mountAutofs() hands the AutofsMount constructor it calls (JavaScript cannot make one).
struct PendingAutofsMount {
  int pipe_fd = -1;
  int control_fd = -1;
  std::string where;
  dev_t devid = 0;
  bool strict_expire = false;
  uint32_t proto_version = 0;
  uint32_t proto_sub_version = 0;
};

class AutofsMount : public PolledFdHandle<AutofsMount, AutofsAddon, PendingAutofsMount> {
 public:
  // A v5 packet is 300 bytes (304 with the padding of 64-bit ABIs). The pipe is in packet mode:
  // a read returns one packet and drops what does not fit, so read with room to spare.
  static constexpr size_t kReadBytes = 512;
  // The rest waits in the pipe (the kernel's writers block meanwhile: the pipe is the bound).
  static constexpr size_t kMaxPacketsPerBatch = 256;

  static constexpr napi_type_tag kTypeTag = {0x4fde199f3c72efc2ULL, 0xa77e2af4e5deeaccULL};
  static constexpr const char* kClassName = "AutofsMount";
  static constexpr const char* kCreatedBy = "AutofsMount is created by mountAutofs()";

  static Napi::Function DefineClass(Napi::Env env);
  // Closes the fds no constructor took (the mount stays; the caller unmounts).
  static void ClosePending(PendingAutofsMount* pending);

  // Made by mountAutofs() only, for a mounted autofs (PolledFdAddon::CreateHandle). Its fd_ is
  // the pipe's read end.
  explicit AutofsMount(const Napi::CallbackInfo& info);
  ~AutofsMount() override;

 private:
  friend Base;

  void Adopt(PendingAutofsMount* pending);
  // Closes both fds. The kernel keeps the mount; with the pipe's read end gone its next write
  // fails and it turns catatonic.
  void CloseFds();
  void OnWakeUp(Napi::Env env, int status);
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
  Napi::Value GetClosed(const Napi::CallbackInfo& info);
  Napi::Value GetDevId(const Napi::CallbackInfo& info);
  Napi::Value GetWhere(const Napi::CallbackInfo& info);
  Napi::Value GetPipeFd(const Napi::CallbackInfo& info);
  Napi::Value GetStrictExpire(const Napi::CallbackInfo& info);
  Napi::Value GetProtocol(const Napi::CallbackInfo& info);

  int control_fd_ = -1;
  std::string where_;
  dev_t devid_ = 0;
  bool strict_expire_ = false;
  uint32_t proto_version_ = 0;
  uint32_t proto_sub_version_ = 0;
};

}  // namespace triggerd
