// The fds spawn() keeps open from one call to the next instead of opening them for every child:
// /dev/null (the parent side of a plan's `parentFd: -1`) and the O_PATH directories of the
// cgroups children start in (CLONE_INTO_CGROUP). Both are O_CLOEXEC and never handed to
// JavaScript. JavaScript thread only.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace triggerd {

class SpawnFdCache {
 public:
  // Cgroups held at most; the least recently used one is closed to make room.
  static constexpr size_t kMaxCgroups = 128;

  SpawnFdCache() = default;
  ~SpawnFdCache();
  SpawnFdCache(const SpawnFdCache&) = delete;
  SpawnFdCache& operator=(const SpawnFdCache&) = delete;

  // /dev/null, O_RDWR. An fstat checks that the held number still is /dev/null (someone may
  // have closed it by number and the number been reused); otherwise it is opened again.
  // -1 with errno from open().
  int NullFd();
  // The cgroup directory at `path` (O_PATH | O_DIRECTORY). A held fd is checked with fstat
  // against the inode it was opened on; `*held` says whether it was held from before (so a spawn
  // that fails with it can drop it and try a fresh one: a removed cgroup stays dead behind an
  // open fd, even when a new one is made at the same path). -1 with errno from open().
  int CgroupFd(const std::string& path, bool* held);
  // Closes the fd held for `path`, if any (the cgroup is being removed: a held fd would keep the
  // dead group around). Returns whether one was held.
  bool ForgetCgroup(const std::string& path);
  size_t cgroup_count() const { return cgroups_.size(); }

 private:
  struct Held {
    int fd;
    dev_t dev;
    ino_t ino;
    uint64_t last_use;
  };
  int null_fd_ = -1;
  std::unordered_map<std::string, Held> cgroups_;
  uint64_t uses_ = 0;
};

}  // namespace triggerd
