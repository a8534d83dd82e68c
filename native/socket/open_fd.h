// Making the fds of a .socket unit: listening sockets with systemd.socket(5)'s options, FIFOs,
// special files and POSIX message queues. Plain POSIX, no JavaScript: addon.cc checks the
// arguments and turns a Failure into a Node-style error.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "socket_address.h"

namespace triggerd {

enum class BindIPv6Only { kDefault, kBoth, kIpv6Only };

// SocketOptions as read from JavaScript. An unset option (and a boolean that is false) leaves
// the kernel's default, as systemd does.
struct OpenOptions {
  int backlog = SOMAXCONN;
  BindIPv6Only bind_ipv6_only = BindIPv6Only::kDefault;
  std::string bind_to_device;
  bool free_bind = false;
  bool transparent = false;
  bool reuse_port = false;
  bool keep_alive = false;
  std::optional<int> keep_alive_time;
  std::optional<int> keep_alive_interval;
  std::optional<int> keep_alive_probes;
  bool no_delay = false;
  std::optional<int> defer_accept;
  std::optional<int> priority;
  std::optional<int> receive_buffer;
  std::optional<int> send_buffer;
  std::optional<int> ip_tos;
  std::optional<int> ip_ttl;
  std::optional<uint32_t> mark;
  bool pass_credentials = false;
  bool pass_security = false;
  bool broadcast = false;
  mode_t socket_mode = 0666;
  mode_t directory_mode = 0755;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
};

// What went wrong: a positive errno, the step ('socket', 'setsockopt', 'bind', ...), the
// SocketOptions key for a setsockopt, and the path for steps on a file (a created directory's
// own path for 'mkdir').
struct Failure {
  int err = 0;
  const char* syscall = nullptr;
  const char* option = nullptr;
  std::string path;
};

// socket(2) non-blocking and close-on-exec, the options, bind(2), listen(2) for stream and
// seqpacket. AF_NETLINK is always SOCK_RAW (as systemd), whatever `type` says. Unix paths:
// missing parents created (mode exactly `directory_mode`), a stale socket file (only a socket)
// unlinked, bound, chmod `socket_mode`, chown when uid/gid are set.
// The options systemd only warns about (all but IPV6_V6ONLY, SO_BINDTODEVICE and SO_REUSEADDR)
// go to `*warnings` when it is not null, and fail the call when it is.
// Returns the fd, or -1 with `*failure` set; on failure nothing is left open and a path bound by
// this call is unlinked again.
int OpenListeningSocket(int type, const SocketAddressSpec& address, const OpenOptions& options,
                        std::vector<Failure>* warnings, Failure* failure);

// ListenFIFO=: parents, mkfifo (an existing FIFO is reused), open O_RDWR|O_NONBLOCK|O_CLOEXEC|
// O_NOFOLLOW, fchmod `socket_mode` (exact, whatever the umask), fchown when uid/gid are set.
int OpenFifo(const std::string& path, const OpenOptions& options, Failure* failure);

// ListenSpecial=: an existing regular file or character device, O_RDWR (O_RDONLY when that is
// refused with EACCES/EPERM/EROFS), non-blocking, close-on-exec, not following a final symlink.
// Anything else is EINVAL with syscall 'fstat'.
int OpenSpecial(const std::string& path, Failure* failure);

// ListenMessageQueue=: mq_open(O_CREAT|O_RDWR|O_NONBLOCK|O_CLOEXEC) with mq_maxmsg/mq_msgsize
// when both are > 0 (systemd's rule; the kernel's defaults otherwise), then fchmod `mode`.
int OpenMessageQueue(const std::string& name, mode_t mode, long max_messages, long message_size,
                     Failure* failure);

}  // namespace triggerd
