// Per-environment state of triggerd_inotify.node (napi instance data): the InotifyHandle class of
// this environment and the fd handover (common/polled_fd_addon.h).
#pragma once

#include <napi.h>

#include "../common/polled_fd_addon.h"
#include "inotify_handle.h"

namespace triggerd {

class InotifyAddon : public PolledFdAddon<InotifyAddon, InotifyHandle> {
 public:
  InotifyAddon(Napi::Env env, Napi::Object exports);

 private:
  Napi::Value OpenInotify(const Napi::CallbackInfo& info);
  Napi::Value RereadPartitionTable(const Napi::CallbackInfo& info);
};

}  // namespace triggerd
