#include "notify_client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace triggerd {

int SendNotifyDatagram(const UnixAddress& address, const uint8_t* data, size_t length,
                       const std::vector<int>& fds, size_t* sent, const char** failed_syscall) {
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *failed_syscall = "socket";
    return errno;
  }

  struct iovec iov = {const_cast<uint8_t*>(data), length};
  struct msghdr msg = {};
  msg.msg_name = const_cast<struct sockaddr_un*>(&address.address);
  msg.msg_namelen = address.length;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;

  std::unique_ptr<uint64_t[]> control;
  if (!fds.empty()) {
    size_t data_bytes = sizeof(int) * fds.size();
    size_t space = CMSG_SPACE(data_bytes);
    control = std::make_unique<uint64_t[]>((space + 7) / 8);
    std::memset(control.get(), 0, space);
    msg.msg_control = control.get();
    msg.msg_controllen = space;
    struct cmsghdr* header = CMSG_FIRSTHDR(&msg);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(data_bytes);
    std::memcpy(CMSG_DATA(header), fds.data(), data_bytes);
  }

  ssize_t result;
  do {
    result = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (result < 0 && errno == EINTR);
  int err = result < 0 ? errno : 0;
  close(fd);
  if (err != 0) {
    *failed_syscall = "sendmsg";
    return err;
  }
  *sent = static_cast<size_t>(result);
  return 0;
}

}  // namespace triggerd
