// Per-environment state of triggerd_mounts.node (napi instance data): the MountInfoWatch class of
// this environment and the fd handover (common/polled_fd_addon.h).
#pragma once

#include <napi.h>

#include "../common/polled_fd_addon.h"
#include "mountinfo_watch.h"

namespace triggerd {

class MountsAddon : public PolledFdAddon<MountsAddon, MountInfoWatch> {
 public:
  MountsAddon(Napi::Env env, Napi::Object exports);

 private:
  Napi::Value WatchMountInfo(const Napi::CallbackInfo& info);
};

}  // namespace triggerd
