// AF_UNIX addresses as $NOTIFY_SOCKET spells them: an absolute file system path, or "@name" for
// the abstract namespace (sd_notify(3)). Plain POSIX, no JavaScript.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <string>

namespace triggerd {

struct UnixAddress {
  struct sockaddr_un address = {};
  socklen_t length = 0;
  bool abstract = false;
};

enum class UnixAddressProblem { kNone, kInvalid, kTooLong };

// Fills `out` from `path`. kInvalid: empty, neither absolute nor "@name", or an embedded NUL;
// kTooLong: does not fit sun_path (107 bytes for a path, 107 for an abstract name).
UnixAddressProblem MakeUnixAddress(const std::string& path, UnixAddress* out);

}  // namespace triggerd
