// The JavaScript NotifySocket: owns a bound sd_notify datagram socket, watches it with uv_poll on
// the environment's own loop, and on each wake-up drains it into one batch for `onBatch`:
// payload bytes, sender credentials, the sender's pidfd and any passed fds. It parses nothing.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "../common/polled_fd_handle.h"
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

class NotifySocket : public PolledFdHandle<NotifySocket, NotifyAddon, NotifyFd> {
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
  // Each datagram's sender pidfd is open until JavaScript routes it: under a STATUS= flood,
  // 1024 per batch kept ~1,100 fds open in the daemon (bench/load), 128 keeps ~210.
  static constexpr uint32_t kMaxBatchDatagrams = 128;
  static constexpr size_t kMaxBatchFds = 1024;

  static constexpr napi_type_tag kTypeTag = {0x4e643511e57470d9ULL, 0xba6715705082180bULL};
  static constexpr const char* kClassName = "NotifySocket";
  static constexpr const char* kCreatedBy = "NotifySocket is created by openNotifySocket()";

  static Napi::Function DefineClass(Napi::Env env);

  // Made by openNotifySocket() only, with an opened fd (PolledFdAddon::CreateHandle). Closing
  // it unlinks nothing.
  explicit NotifySocket(const Napi::CallbackInfo& info);

 private:
  friend Base;

  void Adopt(NotifyFd* opened);
  void OnWakeUp(Napi::Env env, int status);
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

  Napi::Value GetReceiveBufferBytes(const Napi::CallbackInfo& info);
  Napi::Value GetPassPidfd(const Napi::CallbackInfo& info);

  int receive_buffer_bytes_ = 0;
  bool pass_pidfd_ = false;
  std::unique_ptr<uint8_t[]> payload_buffer_;
  // Storage for one ucred, one pidfd and kMaxFdsPerDatagram fds, aligned for cmsghdr.
  std::unique_ptr<uint64_t[]> control_buffer_;
  size_t control_bytes_ = 0;
  std::unique_ptr<int[]> fd_scratch_;
};

// Closes every fd (and pidfd) of the datagrams; for batches that never reach JavaScript.
void CloseReceivedFds(std::vector<ReceivedDatagram>* batch);

}  // namespace triggerd
