// The JavaScript NotifySocket: owns a bound sd_notify datagram socket, watches it with uv_poll on
// the environment's own loop, and on each wake-up drains it into one batch for `onBatch`:
// payload bytes, sender credentials, the sender's pidfd and any passed fds. It parses nothing.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "../common/fd_poller.h"
#include "notify_fd.h"

namespace triggerd {

class NotifyAddon;

// One datagram as read, before it becomes a JavaScript object. Owns its fds until handed over.
struct ReceivedDatagram {
  std::vector<uint8_t> payload;  // at most kPayloadBytes of it
  size_t length = 0;             // the datagram's real size (recvmsg with MSG_TRUNC says it)
  double pid = -1;               // SCM_CREDENTIALS, -1 when the kernel attached none
  double uid = -1;
  double gid = -1;
  int pidfd = -1;                // SCM_PIDFD, -1 when none
  std::vector<int> fds;          // SCM_RIGHTS, in order
  bool truncated = false;        // MSG_TRUNC or MSG_CTRUNC
};

class NotifySocket : public Napi::ObjectWrap<NotifySocket>, private FdPollerClient {
 public:
  // systemd's NOTIFY_BUFFER_MAX is PIPE_BUF (4096); one byte more tells an oversized datagram
  // from one that fits exactly, even where MSG_TRUNC would not be reported.
  static constexpr size_t kPayloadBytes = 4096 + 1;
  // systemd's NOTIFY_FD_MAX. The kernel passes at most SCM_MAX_FD (253) per sendmsg, so this is
  // room to spare, never a limit a sender reaches.
  static constexpr size_t kMaxFdsPerDatagram = 768;
  // One wake-up delivers at most this many datagrams, and stops reading once this many fds were
  // received (so a batch holds fewer than kMaxBatchFds + kMaxFdsPerDatagram fds + one pidfd per
  // datagram). The rest waits in the kernel; uv_poll is level-triggered and wakes us again.
  static constexpr uint32_t kMaxBatchDatagrams = 1024;
  static constexpr size_t kMaxBatchFds = 1024;

  static Napi::Function DefineClass(Napi::Env env);
  // Wraps an opened fd in a new NotifySocket and starts watching it. Takes the fd in every case:
  // on failure it is closed and the error thrown.
  static Napi::Object Create(Napi::Env env, NotifyAddon* addon,
                             const Napi::FunctionReference& socket_class, NotifyFd* opened,
                             Napi::Function on_batch, Napi::Function on_error);

  // JavaScript cannot construct one itself: only Create() leaves an fd pending for it.
  // Only objects this class made: accessors called on a foreign `this` reach Unwrap too
  // (see common/instance_tag.h).
  static NotifySocket* Unwrap(Napi::Object object);

  explicit NotifySocket(const Napi::CallbackInfo& info);
  ~NotifySocket() override;

  // Stops watching and closes the fd without calling into JavaScript, so it is safe from the
  // destructor and from the environment's teardown. Idempotent. Unlinks nothing.
  void CloseNative();

 private:
  // FdPollerClient
  void OnReadable(int status) override;
  void OnEnvironmentTeardown() override;

  void Start(Napi::Env env);
  void HandleWakeUp(int status);
  // Reads until EAGAIN or a bound into `batch`; returns 0 or the errno of a failed recvmsg.
  int Drain(std::vector<ReceivedDatagram>* batch);
  // One datagram's ancillary data; its fds are in fd_scratch_[0..fd_count).
  struct Control {
    double pid = -1;
    double uid = -1;
    double gid = -1;
    int pidfd = -1;
    size_t fd_count = 0;
  };
  // Reads the ancillary data of the datagram just received, without allocating.
  void CollectControl(struct msghdr* msg, Control* out);
  // Calls the callback unless close() released it; false when it was not called.
  bool CallBack(Napi::FunctionReference& callback, napi_value argument);
  // Holds a strong reference to the JS object while it is watched (so onBatch can run however
  // the caller keeps it); paused or closed, it may be garbage collected, which closes the fd.
  void UpdateStrongReference();
  void ReleaseCallbacks();

  Napi::Value GetReceiveBufferBytes(const Napi::CallbackInfo& info);
  Napi::Value GetPassPidfd(const Napi::CallbackInfo& info);
  void Pause(const Napi::CallbackInfo& info);
  void Resume(const Napi::CallbackInfo& info);
  void Close(const Napi::CallbackInfo& info);
  void RefLoop(const Napi::CallbackInfo& info);
  void UnrefLoop(const Napi::CallbackInfo& info);

  int fd_ = -1;
  int receive_buffer_bytes_ = 0;
  bool pass_pidfd_ = false;
  FdPoller poller_;
  bool paused_ = false;
  bool strong_reference_ = false;
  bool in_callback_ = false;
  Napi::FunctionReference on_batch_;
  Napi::FunctionReference on_error_;
  std::unique_ptr<Napi::AsyncContext> async_context_;
  std::unique_ptr<uint8_t[]> payload_buffer_;
  // Storage for one ucred, one pidfd and kMaxFdsPerDatagram fds, aligned for cmsghdr.
  std::unique_ptr<uint64_t[]> control_buffer_;
  size_t control_bytes_ = 0;
  std::unique_ptr<int[]> fd_scratch_;
};

// Closes every fd (and pidfd) of the datagrams; for batches that never reach JavaScript.
void CloseReceivedFds(std::vector<ReceivedDatagram>* batch);

}  // namespace triggerd
