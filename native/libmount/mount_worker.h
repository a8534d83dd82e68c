// One mount or umount through libmount (mnt_context_mount / mnt_context_umount), run on a libuv
// threadpool thread (Napi::AsyncWorker): setting up a loop device and mounting a file system can
// block for a long time, which must never stall the event loop. It does what mount(8) and
// umount(8) do inside their processes, minus the fork and exec: option parsing, loop devices for
// image files, the utab. Helpers (mount.<type>) are disabled here: a unit that needs one runs
// mount(8) as a process instead (TypeScript decides). The outcome is mount(8)'s exit code and
// libmount's own message, as mount(8) would print them.
#pragma once

#include <napi.h>

#include <string>

#include "libmount_library.h"

namespace triggerd {

struct LibmountRequest {
  bool umount = false;
  // mount: source, target, fstype ('' = none), options ('' = none), sloppy (-s), rwonly (-w).
  std::string source;
  std::string target;
  std::string fstype;
  std::string options;
  bool sloppy = false;
  bool rwonly = false;
  // umount: target, lazy (-l), force (-f); paths are never canonicalized (-c).
  bool lazy = false;
  bool force = false;
};

class MountWorker : public Napi::AsyncWorker {
 public:
  // The library is loaded in Execute() (on the threadpool) if load() has not done it yet.
  MountWorker(Napi::Env env, LibmountRequest request);

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& error) override;

 private:
  Napi::Promise::Deferred deferred_;
  const LibmountLibrary* library_ = nullptr;
  std::string load_error_;  // why libmount.so.1 could not be loaded
  LibmountRequest request_;
  // Outcome, written by Execute() on the worker thread, read by OnOK() on the main thread.
  int err_ = 0;           // errno when no context could be made or set up
  const char* step_ = nullptr;
  int rc_ = 0;            // mnt_context_mount/umount's return value
  int exit_code_ = 0;     // mnt_context_get_excode: mount(8)'s exit status
  std::string message_;   // and its text
  bool syscall_called_ = false;
  int syscall_errno_ = 0;
};

}  // namespace triggerd
