// Entry point of triggerd_inotify.node: openInotify() (an inotify instance watched on the
// environment's loop) and rereadPartitionTable(), the one block-device ioctl that udev's
// "synthesize change" for a whole disk needs.
#include "addon.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "../common/arguments.h"
#include "../netlink/system_error.h"
#include "inotify_handle.h"

namespace triggerd {

InotifyAddon::InotifyAddon(Napi::Env env, Napi::Object exports) : PolledFdAddon(env) {
  DefineAddon(exports, {
                           InstanceMethod<&InotifyAddon::OpenInotify>("openInotify",
                                                                      napi_enumerable),
                           InstanceMethod<&InotifyAddon::RereadPartitionTable>(
                               "rereadPartitionTable", napi_enumerable),
                       });
}

Napi::Value InotifyAddon::OpenInotify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Function on_batch = FunctionArgument(env, info[0], "onBatch");
  Napi::Function on_error = FunctionArgument(env, info[1], "onError");
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) throw MakeSystemError(env, errno, "inotify_init1");
  return CreateHandle(env, &fd, on_batch, on_error);
}

// udevd's way: only when nobody holds the disk (LOCK_EX|LOCK_NB, as BLOCK_DEVICE_LOCKING asks
// of partitioners), BLKRRPART; the kernel then sends change/remove/add for the table itself.
Napi::Value InotifyAddon::RereadPartitionTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string path = PathArgument(env, info[0]);
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) throw SystemErrorWithPath(env, errno, "open", path);
  const char* failed = nullptr;
  int err = 0;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    err = errno;
    failed = "flock";
  } else if (ioctl(fd, BLKRRPART, 0) != 0) {
    err = errno;
    failed = "ioctl";
  }
  close(fd);
  if (failed != nullptr) throw SystemErrorWithPath(env, err, failed, path);
  return env.Undefined();
}

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::InotifyAddon;
NODE_API_ADDON(InotifyAddon)
