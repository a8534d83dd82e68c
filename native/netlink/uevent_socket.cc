#include "uevent_socket.h"

#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "../common/batch_item.h"
#include "addon.h"
#include "system_error.h"

namespace triggerd {

namespace {

// Property names made once per batch instead of once per item.
struct ItemKeys {
  explicit ItemKeys(Napi::Env env)
      : kind(Napi::String::New(env, "kind")),
        reason(Napi::String::New(env, "reason")),
        buffer(Napi::String::New(env, "buffer")),
        sender_port(Napi::String::New(env, "senderPort")),
        sender_groups(Napi::String::New(env, "senderGroups")),
        uid(Napi::String::New(env, "uid")),
        gid(Napi::String::New(env, "gid")),
        pid(Napi::String::New(env, "pid")),
        message(Napi::String::New(env, "message")),
        overflow(Napi::String::New(env, "overflow")) {}
  Napi::String kind, reason, buffer, sender_port, sender_groups, uid, gid, pid, message, overflow;
};

Napi::Object OverflowItem(Napi::Env env, const ItemKeys& keys, const char* reason) {
  Napi::Object item = Napi::Object::New(env);
  item.DefineProperties({Field(keys.kind, keys.overflow),
                         Field(keys.reason, Napi::String::New(env, reason))});
  return item;
}

}  // namespace

Napi::Function UeventSocket::DefineClass(Napi::Env env) {
  return ObjectWrap<UeventSocket>::DefineClass(
      env, kClassName,
      {
          InstanceAccessor<&UeventSocket::GetPortId>("portId"),
          InstanceAccessor<&UeventSocket::GetReceiveBufferBytes>("receiveBufferBytes"),
          PauseMethod(),
          ResumeMethod(),
          InstanceMethod<&UeventSocket::Send>("send"),
          CloseMethod(),
          RefMethod(),
          UnrefMethod(),
      });
}

UeventSocket::UeventSocket(const Napi::CallbackInfo& info) : Base(info) {
  receive_buffer_ = std::make_unique<uint8_t[]>(kMaxDatagramBytes);
  TakePending();
}

void UeventSocket::Adopt(UeventFd* opened) {
  fd_ = opened->fd;
  port_id_ = opened->port_id;
  receive_buffer_bytes_ = opened->receive_buffer_bytes;
  opened->fd = -1;
}

void UeventSocket::OnWakeUp(Napi::Env env, int status) {
  // A netlink socket reports POLLERR when the kernel dropped messages, which stops the poll; the
  // drain reads (and so clears) the ENOBUFS, and DeliverBatch watches again.
  DeliverBatch(env, status, "recvmsg", [&](int* recv_error) {
    Napi::Array batch = Napi::Array::New(env);
    *recv_error = Drain(env, batch);
    if (batch.Length() > 0) CallEvent(batch);
  });
}

int UeventSocket::Drain(Napi::Env env, Napi::Array batch) {
  ItemKeys keys(env);
  uint32_t count = 0;
  size_t bytes = 0;
  while (count < kMaxBatchItems && bytes < kMaxBatchBytes) {
    struct sockaddr_nl sender = {};
    alignas(struct cmsghdr) unsigned char control[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {receive_buffer_.get(), kMaxDatagramBytes};
    struct msghdr msg = {};
    msg.msg_name = &sender;
    msg.msg_namelen = sizeof(sender);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);

    ssize_t received = recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (received < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return 0;
      if (err == ENOBUFS) {
        // The kernel dropped datagrams; say so in order and keep reading what it kept.
        batch.Set(count++, OverflowItem(env, keys, "ENOBUFS"));
        continue;
      }
      return err;
    }
    size_t length = static_cast<size_t>(received);
    if ((msg.msg_flags & MSG_TRUNC) != 0 || length > kMaxDatagramBytes) {
      batch.Set(count++, OverflowItem(env, keys, "MSG_TRUNC"));
      continue;
    }

    // -1 when the kernel did not say: never 0, so nothing passes for the kernel or root.
    double sender_port = -1;
    double sender_groups = 0;
    if (msg.msg_namelen >= sizeof(sender) && sender.nl_family == AF_NETLINK) {
      sender_port = sender.nl_pid;
      sender_groups = sender.nl_groups;
    }
    double uid = -1, gid = -1, pid = -1;
    const unsigned char* control_end =
        control + std::min<size_t>(msg.msg_controllen, sizeof(control));
    for (struct cmsghdr* header = CMSG_FIRSTHDR(&msg); header != nullptr;
         header = CMSG_NXTHDR(&msg, header)) {
      const unsigned char* data = CMSG_DATA(header);
      if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_CREDENTIALS &&
          header->cmsg_len >= CMSG_LEN(sizeof(struct ucred)) &&
          data + sizeof(struct ucred) <= control_end) {
        struct ucred cred;
        std::memcpy(&cred, data, sizeof(cred));
        uid = cred.uid;
        gid = cred.gid;
        pid = cred.pid;
      }
    }

    Napi::Object item = Napi::Object::New(env);
    item.DefineProperties({
        Field(keys.kind, keys.message),
        Field(keys.buffer, Napi::Buffer<uint8_t>::Copy(env, receive_buffer_.get(), length)),
        Field(keys.sender_port, Napi::Number::New(env, sender_port)),
        Field(keys.sender_groups, Napi::Number::New(env, sender_groups)),
        Field(keys.uid, Napi::Number::New(env, uid)),
        Field(keys.gid, Napi::Number::New(env, gid)),
        Field(keys.pid, Napi::Number::New(env, pid)),
    });
    batch.Set(count++, item);
    bytes += length;
  }
  return 0;
}

Napi::Value UeventSocket::GetPortId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), port_id_);
}

Napi::Value UeventSocket::GetReceiveBufferBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), receive_buffer_bytes_);
}

Napi::Value UeventSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBuffer()) {
    throw MakeArgumentError(env, "The \"buffer\" argument must be a Buffer or Uint8Array");
  }
  uint32_t dest_port =
      static_cast<uint32_t>(IntegerArgument(env, info[1], "destPort", 0, UINT32_MAX));
  uint32_t dest_groups =
      static_cast<uint32_t>(IntegerArgument(env, info[2], "destGroups", 0, UINT32_MAX));
  Napi::Buffer<uint8_t> buffer = info[0].As<Napi::Buffer<uint8_t>>();
  if (fd_ < 0) throw MakeSystemError(env, EBADF, "sendto");

  struct sockaddr_nl destination = {};
  destination.nl_family = AF_NETLINK;
  destination.nl_pid = dest_port;
  destination.nl_groups = dest_groups;
  ssize_t sent;
  do {
    sent = sendto(fd_, buffer.Data(), buffer.Length(), MSG_DONTWAIT | MSG_NOSIGNAL,
                  reinterpret_cast<struct sockaddr*>(&destination), sizeof(destination));
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) throw MakeSystemError(env, errno, "sendto");
  return Napi::Number::New(env, static_cast<double>(sent));
}

}  // namespace triggerd
