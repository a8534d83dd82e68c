// The client side and fd helpers of triggerd_notify.node: what tests need to talk to the notify
// socket the way sd_notify() does (including SCM_RIGHTS), and closing fds the receiver handed
// to JavaScript. Argument checks happen in addon.cc; these are plain POSIX.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "unix_address.h"

namespace triggerd {

// Sends one datagram to `address` from a fresh unbound AF_UNIX socket, passing `fds` with
// SCM_RIGHTS when there are any. Non-blocking (MSG_DONTWAIT): a full receive queue is EAGAIN,
// never a hang, so a test in the receiver's own process cannot deadlock itself.
// Returns 0 and the bytes sent, or a positive errno with `*failed_syscall` set.
int SendNotifyDatagram(const UnixAddress& address, const uint8_t* data, size_t length,
                       const std::vector<int>& fds, size_t* sent, const char** failed_syscall);

}  // namespace triggerd
