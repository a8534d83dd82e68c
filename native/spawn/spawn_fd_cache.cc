#include "spawn_fd_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>

namespace triggerd {

namespace {

bool IsDevNull(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

}  // namespace

SpawnFdCache::~SpawnFdCache() {
  if (null_fd_ >= 0) close(null_fd_);
  for (const auto& entry : cgroups_) close(entry.second.fd);
}

int SpawnFdCache::NullFd() {
  if (null_fd_ >= 0 && IsDevNull(null_fd_)) return null_fd_;
  // Not ours any more (closed by number elsewhere): leave that number alone, open a new one.
  null_fd_ = -1;
  int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd < 0) return -1;
  null_fd_ = fd;
  return fd;
}

int SpawnFdCache::CgroupFd(const std::string& path, bool* held) {
  *held = false;
  auto found = cgroups_.find(path);
  if (found != cgroups_.end()) {
    struct stat st;
    Held& entry = found->second;
    if (fstat(entry.fd, &st) == 0 && st.st_dev == entry.dev && st.st_ino == entry.ino) {
      entry.last_use = ++uses_;
      *held = true;
      return entry.fd;
    }
    // The number was closed (and maybe reused) behind our back: it is not ours to close.
    cgroups_.erase(found);
  }
  int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0) {  // an fd we cannot check later is not kept
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  if (cgroups_.size() >= kMaxCgroups) {
    auto oldest = cgroups_.begin();
    for (auto it = cgroups_.begin(); it != cgroups_.end(); ++it) {
      if (it->second.last_use < oldest->second.last_use) oldest = it;
    }
    close(oldest->second.fd);
    cgroups_.erase(oldest);
  }
  cgroups_[path] = Held{fd, st.st_dev, st.st_ino, ++uses_};
  return fd;
}

bool SpawnFdCache::ForgetCgroup(const std::string& path) {
  auto found = cgroups_.find(path);
  if (found == cgroups_.end()) return false;
  close(found->second.fd);
  cgroups_.erase(found);
  return true;
}

}  // namespace triggerd
