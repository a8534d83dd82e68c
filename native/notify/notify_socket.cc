#include "notify_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "../common/batch_item.h"
#include "../common/js_calls.h"
#include "addon.h"
#include "../netlink/system_error.h"

namespace triggerd {

namespace {

// Property names made once per batch instead of once per item.
struct ItemKeys {
  explicit ItemKeys(Napi::Env env)
      : kind(Napi::String::New(env, "kind")),
        datagram(Napi::String::New(env, "datagram")),
        buffer(Napi::String::New(env, "buffer")),
        length(Napi::String::New(env, "length")),
        pid(Napi::String::New(env, "pid")),
        uid(Napi::String::New(env, "uid")),
        gid(Napi::String::New(env, "gid")),
        pidfd(Napi::String::New(env, "pidfd")),
        fds(Napi::String::New(env, "fds")),
        truncated(Napi::String::New(env, "truncated")) {}
  Napi::String kind, datagram, buffer, length, pid, uid, gid, pidfd, fds, truncated;
};

Napi::Object DatagramItem(Napi::Env env, const ItemKeys& keys, const ReceivedDatagram& received) {
  Napi::Array fds = Napi::Array::New(env, received.fds.size());
  for (size_t i = 0; i < received.fds.size(); i++) {
    fds.Set(static_cast<uint32_t>(i), Napi::Number::New(env, received.fds[i]));
  }
  Napi::Object item = Napi::Object::New(env);
  item.DefineProperties({
      Field(keys.kind, keys.datagram),
      Field(keys.buffer, Napi::Buffer<uint8_t>::Copy(env, received.payload.data(),
                                                     received.payload.size())),
      Field(keys.length, Napi::Number::New(env, static_cast<double>(received.length))),
      Field(keys.pid, Napi::Number::New(env, received.pid)),
      Field(keys.uid, Napi::Number::New(env, received.uid)),
      Field(keys.gid, Napi::Number::New(env, received.gid)),
      Field(keys.pidfd, Napi::Number::New(env, received.pidfd)),
      Field(keys.fds, fds),
      Field(keys.truncated, Napi::Boolean::New(env, received.truncated)),
  });
  return item;
}

// Closes the fds of a batch unless released: whatever happens between recvmsg() and the moment
// JavaScript has the batch, no received fd may leak.
class BatchGuard {
 public:
  explicit BatchGuard(std::vector<ReceivedDatagram>* batch) : batch_(batch) {}
  ~BatchGuard() {
    if (batch_ != nullptr) CloseReceivedFds(batch_);
  }
  BatchGuard(const BatchGuard&) = delete;
  BatchGuard& operator=(const BatchGuard&) = delete;
  void Release() { batch_ = nullptr; }

 private:
  std::vector<ReceivedDatagram>* batch_;
};

}  // namespace

void CloseReceivedFds(std::vector<ReceivedDatagram>* batch) {
  for (ReceivedDatagram& received : *batch) {
    for (int fd : received.fds) close(fd);
    received.fds.clear();
    if (received.pidfd >= 0) close(received.pidfd);
    received.pidfd = -1;
  }
}

Napi::Function NotifySocket::DefineClass(Napi::Env env) {
  return ObjectWrap<NotifySocket>::DefineClass(
      env, kClassName,
      {
          InstanceAccessor<&NotifySocket::GetReceiveBufferBytes>("receiveBufferBytes"),
          InstanceAccessor<&NotifySocket::GetPassPidfd>("passPidfd"),
          PauseMethod(),
          ResumeMethod(),
          CloseMethod(),
          RefMethod(),
          UnrefMethod(),
      });
}

NotifySocket::NotifySocket(const Napi::CallbackInfo& info) : Base(info) {
  payload_buffer_ = std::make_unique<uint8_t[]>(kPayloadBytes);
  control_bytes_ = CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int)) +
                   CMSG_SPACE(sizeof(int) * kMaxFdsPerDatagram);
  control_buffer_ = std::make_unique<uint64_t[]>((control_bytes_ + 7) / 8);
  fd_scratch_ = std::make_unique<int[]>(kMaxFdsPerDatagram);
  TakePending();
}

void NotifySocket::Adopt(NotifyFd* opened) {
  fd_ = opened->fd;
  receive_buffer_bytes_ = opened->receive_buffer_bytes;
  pass_pidfd_ = opened->pass_pidfd;
  opened->fd = -1;
}

// A batch's fds, registered with the addon for as long as onBatch runs (NotifyAddon::batch_fds).
// Whatever JavaScript did not close when the call ends with the environment no longer able to
// run it (terminated mid-batch, or before the call) is closed here: nobody else will. Otherwise
// JavaScript owns what it kept (a slice for a later turn, the fd store).
class BatchInFlight {
 public:
  BatchInFlight(Napi::Env env, const std::vector<ReceivedDatagram>& batch)
      : env_(env), addon_(env.GetInstanceData<NotifyAddon>()) {
    if (addon_ == nullptr) return;
    for (const ReceivedDatagram& received : batch) {
      for (int fd : received.fds) addon_->batch_fds().insert(fd);
      if (received.pidfd >= 0) addon_->batch_fds().insert(received.pidfd);
    }
  }
  ~BatchInFlight() {
    if (addon_ == nullptr) return;
    if (!closed_elsewhere_ && !CanCallIntoJs(env_)) {
      for (int fd : addon_->batch_fds()) close(fd);
    }
    addon_->batch_fds().clear();
  }
  BatchInFlight(const BatchInFlight&) = delete;
  BatchInFlight& operator=(const BatchInFlight&) = delete;

  // onBatch was not called: the caller closes the whole batch itself.
  void ClosedElsewhere() { closed_elsewhere_ = true; }

 private:
  Napi::Env env_;
  NotifyAddon* addon_;
  bool closed_elsewhere_ = false;
};

void NotifySocket::OnWakeUp(Napi::Env env, int status) {
  // A datagram socket has no pending error to clear after POLLERR: DeliverBatch watches again
  // unless the fd itself is gone.
  DeliverBatch(env, status, "recvmsg", [&](int* recv_error) {
    std::vector<ReceivedDatagram> received;
    BatchGuard guard(&received);
    *recv_error = Drain(&received);
    if (!received.empty()) {
      ItemKeys keys(env);
      Napi::Array batch = Napi::Array::New(env, received.size());
      for (size_t i = 0; i < received.size(); i++) {
        batch.Set(static_cast<uint32_t>(i), DatagramItem(env, keys, received[i]));
      }
      // From here the fds belong to JavaScript, also when onBatch throws; but not when the
      // environment ends under it (BatchInFlight).
      guard.Release();
      BatchInFlight in_flight(env, received);
      if (!CallEvent(batch)) {
        in_flight.ClosedElsewhere();
        CloseReceivedFds(&received);
      }
    }
  });
}

int NotifySocket::Drain(std::vector<ReceivedDatagram>* batch) {
  size_t fd_count = 0;
  while (batch->size() < kMaxBatchDatagrams && fd_count < kMaxBatchFds) {
    struct iovec iov = {payload_buffer_.get(), kPayloadBytes};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control_buffer_.get();
    msg.msg_controllen = control_bytes_;

    // MSG_TRUNC: the return value is the datagram's real length, so an oversized one is told
    // apart and its size can be logged. MSG_CMSG_CLOEXEC: no received fd leaks into a child.
    ssize_t received = recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC | MSG_TRUNC);
    if (received < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return 0;
      return err;
    }

    // The fds are ours from here, whatever else is wrong with the datagram. Collecting them
    // allocates nothing, so nothing can throw between recvmsg() and knowing every one of them.
    Control control;
    CollectControl(&msg, &control);
    bool added = false;
    try {
      batch->emplace_back();
      added = true;
      ReceivedDatagram& out = batch->back();
      out.pid = control.pid;
      out.uid = control.uid;
      out.gid = control.gid;
      out.pidfd = control.pidfd;
      out.fds.assign(fd_scratch_.get(), fd_scratch_.get() + control.fd_count);
      out.length = static_cast<size_t>(received);
      out.truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
      size_t copied = std::min(out.length, kPayloadBytes);
      out.payload.assign(payload_buffer_.get(), payload_buffer_.get() + copied);
    } catch (...) {
      // Out of memory. The caller's guard closes the batch so far; this datagram's fds are
      // closed here from the scratch copy, so it leaves the batch first (no double close).
      if (added) batch->pop_back();
      for (size_t i = 0; i < control.fd_count; i++) close(fd_scratch_[i]);
      if (control.pidfd >= 0) close(control.pidfd);
      throw;
    }
    fd_count += control.fd_count;
  }
  return 0;
}

void NotifySocket::CollectControl(struct msghdr* msg, Control* out) {
  const unsigned char* control = reinterpret_cast<const unsigned char*>(msg->msg_control);
  const unsigned char* control_end =
      control + std::min<size_t>(msg->msg_controllen, control_bytes_);
  for (struct cmsghdr* header = CMSG_FIRSTHDR(msg); header != nullptr;
       header = CMSG_NXTHDR(msg, header)) {
    if (header->cmsg_level != SOL_SOCKET) continue;
    const unsigned char* data = CMSG_DATA(header);
    if (header->cmsg_len < CMSG_LEN(0) || data > control_end) continue;
    size_t data_bytes = std::min<size_t>(header->cmsg_len - CMSG_LEN(0),
                                         static_cast<size_t>(control_end - data));
    if (header->cmsg_type == SCM_CREDENTIALS) {
      if (data_bytes >= sizeof(struct ucred)) {
        struct ucred cred;
        std::memcpy(&cred, data, sizeof(cred));
        out->pid = cred.pid;
        out->uid = cred.uid;
        out->gid = cred.gid;
      }
    } else if (header->cmsg_type == SCM_RIGHTS) {
      for (size_t offset = 0; offset + sizeof(int) <= data_bytes; offset += sizeof(int)) {
        int fd;
        std::memcpy(&fd, data + offset, sizeof(fd));
        if (fd < 0) continue;
        // The control buffer holds at most kMaxFdsPerDatagram, so this never closes one; it
        // only keeps a malformed header from writing past the scratch array.
        if (out->fd_count < kMaxFdsPerDatagram) {
          fd_scratch_[out->fd_count++] = fd;
        } else {
          close(fd);
        }
      }
    } else if (header->cmsg_type == SCM_PIDFD) {
      if (data_bytes >= sizeof(int)) {
        int pidfd;
        std::memcpy(&pidfd, data, sizeof(pidfd));
        // The kernel puts a negative errno here when it could not make one (6.5–6.15 for a
        // sender that already exited). A second one cannot happen; never leak it if it did.
        if (pidfd >= 0 && out->pidfd >= 0) {
          close(pidfd);
        } else if (pidfd >= 0) {
          out->pidfd = pidfd;
        }
      }
    }
  }
}

Napi::Value NotifySocket::GetReceiveBufferBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), receive_buffer_bytes_);
}

Napi::Value NotifySocket::GetPassPidfd(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), pass_pidfd_);
}

}  // namespace triggerd
