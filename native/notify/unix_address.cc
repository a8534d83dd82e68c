#include "unix_address.h"

#include <cstddef>
#include <cstring>

namespace triggerd {

UnixAddressProblem MakeUnixAddress(const std::string& path, UnixAddress* out) {
  *out = UnixAddress();
  out->address.sun_family = AF_UNIX;
  if (path.size() < 2 || path.find('\0') != std::string::npos) return UnixAddressProblem::kInvalid;
  const size_t capacity = sizeof(out->address.sun_path);
  if (path[0] == '@') {
    // Abstract: sun_path[0] is NUL and the name is exactly the bytes that follow (no terminator,
    // the length says where it ends). That is what sd_notify() sends to, so it must match.
    const size_t name_length = path.size() - 1;
    if (name_length > capacity - 1) return UnixAddressProblem::kTooLong;
    std::memcpy(out->address.sun_path + 1, path.data() + 1, name_length);
    out->length = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + 1 + name_length);
    out->abstract = true;
    return UnixAddressProblem::kNone;
  }
  if (path[0] != '/') return UnixAddressProblem::kInvalid;
  // Keep room for the terminating NUL the kernel expects of a path.
  if (path.size() > capacity - 1) return UnixAddressProblem::kTooLong;
  std::memcpy(out->address.sun_path, path.data(), path.size());
  out->length = static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + path.size() + 1);
  return UnixAddressProblem::kNone;
}

}  // namespace triggerd
