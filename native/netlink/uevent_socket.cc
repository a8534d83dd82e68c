#include "uevent_socket.h"

#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <utility>

#include "addon.h"
#include "system_error.h"
#include "../common/instance_tag.h"
#include "../common/js_calls.h"

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

// Defined (not assigned) properties, so setters on Object.prototype never run.
Napi::PropertyDescriptor Field(const Napi::String& key, napi_value value) {
  return Napi::PropertyDescriptor::Value(static_cast<napi_value>(key), value,
                                         napi_default_jsproperty);
}

Napi::Object OverflowItem(Napi::Env env, const ItemKeys& keys, const char* reason) {
  Napi::Object item = Napi::Object::New(env);
  item.DefineProperties({Field(keys.kind, keys.overflow),
                         Field(keys.reason, Napi::String::New(env, reason))});
  return item;
}

}  // namespace

// Marks the instances of UeventSocket (see common/instance_tag.h).
constexpr napi_type_tag kUeventSocketTag = {0xe48c1aaad796d450ULL, 0x5e8d8ac507c3d48bULL};

UeventSocket* UeventSocket::Unwrap(Napi::Object object) {
  return UnwrapTagged<UeventSocket>(object, &kUeventSocketTag, "UeventSocket");
}

Napi::Function UeventSocket::DefineClass(Napi::Env env) {
  return ObjectWrap<UeventSocket>::DefineClass(
      env, "UeventSocket",
      {
          InstanceAccessor<&UeventSocket::GetPortId>("portId"),
          InstanceAccessor<&UeventSocket::GetReceiveBufferBytes>("receiveBufferBytes"),
          InstanceMethod<&UeventSocket::Pause>("pause"),
          InstanceMethod<&UeventSocket::Resume>("resume"),
          InstanceMethod<&UeventSocket::Send>("send"),
          InstanceMethod<&UeventSocket::Close>("close"),
          InstanceMethod<&UeventSocket::RefLoop>("ref"),
          InstanceMethod<&UeventSocket::UnrefLoop>("unref"),
      });
}

Napi::Object UeventSocket::Create(Napi::Env env, NetlinkAddon* addon,
                                  const Napi::FunctionReference& socket_class, UeventFd* opened,
                                  Napi::Function on_batch, Napi::Function on_error) {
  Napi::Object object;
  addon->SetPendingFd(opened);
  try {
    object = socket_class.New({on_batch, on_error});
  } catch (...) {
    // The constructor takes the fd (setting it to -1) only once nothing else can fail there.
    addon->SetPendingFd(nullptr);
    if (opened->fd >= 0) close(opened->fd);
    opened->fd = -1;
    throw;
  }
  addon->SetPendingFd(nullptr);
  UeventSocket* socket = Unwrap(object);
  socket->Start(env);
  return object;
}

UeventSocket::UeventSocket(const Napi::CallbackInfo& info) : ObjectWrap<UeventSocket>(info) {
  Napi::Env env = info.Env();
  TagInstance(env, info.This().As<Napi::Object>(), &kUeventSocketTag);
  NetlinkAddon* addon = env.GetInstanceData<NetlinkAddon>();
  UeventFd* opened = addon != nullptr ? addon->TakePendingFd() : nullptr;
  if (opened == nullptr || info.Length() < 2 || !info[0].IsFunction() || !info[1].IsFunction()) {
    throw MakeArgumentError(env, "UeventSocket is created by openUeventSocket()",
                            "ERR_ILLEGAL_CONSTRUCTOR");
  }

  // Everything that can throw happens before the fd is taken.
  on_batch_ = Napi::Persistent(info[0].As<Napi::Function>());
  on_error_ = Napi::Persistent(info[1].As<Napi::Function>());
  async_context_ = std::make_unique<Napi::AsyncContext>(env, "triggerd:UeventSocket",
                                                        info.This().As<Napi::Object>());
  receive_buffer_ = std::make_unique<uint8_t[]>(kMaxDatagramBytes);

  fd_ = opened->fd;
  port_id_ = opened->port_id;
  receive_buffer_bytes_ = opened->receive_buffer_bytes;
  opened->fd = -1;
}

UeventSocket::~UeventSocket() { CloseNative(); }

void UeventSocket::Start(Napi::Env env) {
  const char* failed = nullptr;
  int rc = poller_.Start(env, fd_, this, &failed);
  if (rc != 0) {
    CloseNative();
    ReleaseCallbacks();
    throw MakeSystemError(env, -rc, failed);
  }
  UpdateStrongReference();
}

void UeventSocket::CloseNative() {
  poller_.Close();
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

void UeventSocket::OnEnvironmentTeardown() { CloseNative(); }

void UeventSocket::OnReadable(int status) { HandleWakeUp(status); }

void UeventSocket::HandleWakeUp(int status) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  // The local handle keeps the object (and so `this`) alive whatever the callbacks do.
  Napi::Object self = Value();
  // Shutting down: leave the datagrams in the kernel; the fd is closed with the environment.
  if (self.IsEmpty() || !CanCallIntoJs(env)) return;

  in_callback_ = true;
  int recv_error = 0;
  try {
    Napi::Array batch = Napi::Array::New(env);
    recv_error = Drain(env, batch);
    if (batch.Length() > 0) CallBack(on_batch_, batch);
  } catch (const Napi::Error& error) {
    RaiseUncaught(env, error);
  } catch (const std::exception& exception) {
    RaiseUncaught(env, exception);
  }
  if (recv_error != 0 && fd_ >= 0) {
    try {
      CallBack(on_error_, MakeSystemError(env, recv_error, "recvmsg").Value());
    } catch (const Napi::Error& error) {
      RaiseUncaught(env, error);
    } catch (const std::exception& exception) {
      RaiseUncaught(env, exception);
    }
  }
  in_callback_ = false;

  // libuv stops a poll handle whose fd reports POLLERR (status UV_EBADF), and a netlink socket
  // does that when the kernel dropped messages; the drain above has read (and so cleared) the
  // ENOBUFS, so watch again unless the fd itself is gone.
  if (status < 0 && fd_ >= 0 && !paused_ && recv_error != EBADF && recv_error != ENOTSOCK) {
    int rc = poller_.Resume();
    if (rc != 0) {
      paused_ = true;
      try {
        CallBack(on_error_, MakeSystemError(env, -rc, "uv_poll_start").Value());
      } catch (const Napi::Error& error) {
        RaiseUncaught(env, error);
      } catch (const std::exception& exception) {
        RaiseUncaught(env, exception);
      }
    }
  }
  if (fd_ < 0) {
    async_context_.reset();  // close() ran inside a callback and left this for us
  } else {
    UpdateStrongReference();
  }
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

void UeventSocket::CallBack(Napi::FunctionReference& callback, napi_value argument) {
  // close() from an earlier callback of this wake-up releases the callbacks.
  if (callback.IsEmpty() || async_context_ == nullptr) return;
  // MakeCallback (not Call) so process.nextTick and promise jobs queued by the callback run
  // when it returns, and async_hooks see one async resource per socket.
  callback.MakeCallback(Value(), {argument}, *async_context_);
}

void UeventSocket::UpdateStrongReference() {
  bool want = fd_ >= 0 && !paused_;
  if (want && !strong_reference_) {
    ObjectWrap<UeventSocket>::Ref();
    strong_reference_ = true;
  } else if (!want && strong_reference_) {
    ObjectWrap<UeventSocket>::Unref();
    strong_reference_ = false;
  }
}

void UeventSocket::ReleaseCallbacks() {
  on_batch_.Reset();
  on_error_.Reset();
  // MakeCallback is still using the context when close() runs inside a callback.
  if (!in_callback_) async_context_.reset();
  UpdateStrongReference();
}

Napi::Value UeventSocket::GetPortId(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), port_id_);
}

Napi::Value UeventSocket::GetReceiveBufferBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), receive_buffer_bytes_);
}

void UeventSocket::Pause(const Napi::CallbackInfo& /*info*/) {
  if (fd_ < 0 || paused_) return;
  poller_.Pause();
  paused_ = true;
  UpdateStrongReference();
}

void UeventSocket::Resume(const Napi::CallbackInfo& info) {
  if (fd_ < 0 || !paused_) return;
  int rc = poller_.Resume();
  if (rc != 0) throw MakeSystemError(info.Env(), -rc, "uv_poll_start");
  paused_ = false;
  UpdateStrongReference();
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

void UeventSocket::Close(const Napi::CallbackInfo& /*info*/) {
  CloseNative();
  ReleaseCallbacks();
}

void UeventSocket::RefLoop(const Napi::CallbackInfo& /*info*/) {
  poller_.Ref(true);
}

void UeventSocket::UnrefLoop(const Napi::CallbackInfo& /*info*/) {
  poller_.Ref(false);
}

}  // namespace triggerd
