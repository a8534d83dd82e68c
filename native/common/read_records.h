// Draining a kernel record stream (inotify, fanotify) into one batch: the kernel returns whole
// records only, so consecutive reads concatenate into one valid record stream.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace triggerd {

// Reads the non-blocking `fd` into `out` until EAGAIN, end of file or `max_bytes` gathered,
// `chunk` bytes at a time through `buffer`. `may_read()` is asked before each read (false stops
// the drain: the fd is gone, or backpressure); `on_read(data, size)` sees each read before it is
// appended. Returns 0 or the errno of a failed read.
template <typename MayRead, typename OnRead>
int ReadRecords(int fd, uint8_t* buffer, size_t chunk, size_t max_bytes, std::vector<uint8_t>* out,
                MayRead may_read, OnRead on_read) {
  while (out->size() < max_bytes && may_read()) {
    ssize_t got = read(fd, buffer, chunk);
    if (got < 0) {
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return 0;
      return err;
    }
    if (got == 0) return 0;
    on_read(buffer, static_cast<size_t>(got));
    out->insert(out->end(), buffer, buffer + got);
  }
  return 0;
}

}  // namespace triggerd
