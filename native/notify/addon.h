// Per-environment state of triggerd_notify.node (napi instance data): the NotifySocket class of
// this environment and the fd handover (common/polled_fd_addon.h).
#pragma once

#include <napi.h>

#include <unordered_set>

#include "../common/polled_fd_addon.h"
#include "notify_socket.h"

namespace triggerd {

class NotifyAddon : public PolledFdAddon<NotifyAddon, NotifySocket> {
 public:
  NotifyAddon(Napi::Env env, Napi::Object exports);

  // The fds of the batch onBatch is being called with, while it runs. closeFd() takes its own
  // out, so when the environment stops running JavaScript in the middle of a batch (a worker's
  // terminate()), the socket closes the ones still here and no other (see BatchInFlight).
  std::unordered_set<int>& batch_fds() { return batch_fds_; }

 private:
  std::unordered_set<int> batch_fds_;

  Napi::Value OpenNotifySocket(const Napi::CallbackInfo& info);
  Napi::Value SendDatagram(const Napi::CallbackInfo& info);
  Napi::Value CloseFd(const Napi::CallbackInfo& info);
  Napi::Value Pipe(const Napi::CallbackInfo& info);
};

}  // namespace triggerd
