// acceptSpawn(): the Accept=yes fast path. A thread of its own waits (epoll) on one listening
// socket and on the pidfds of the children it started; per connection it accepts, checks
// MaxConnections against its own live count (exits are reaped on the same thread before any
// accept, so a finished instance never counts), clones the child from a plan built once in
// TypeScript (the connection as the plan's connection fds, REMOTE_ADDR/REMOTE_PORT added),
// closes its copy of the connection, and queues a record. JavaScript gets the records in batches,
// one call per wake-up of its loop: started, failed, refused, exited, accept-error.
#pragma once

#include <napi.h>

namespace triggerd {

// acceptSpawn(fd, plan, options, onRecords) → handle; see src/native/socket-addon.ts. The caller
// has checked that nothing else watches the fd.
Napi::Value StartAcceptSpawn(const Napi::CallbackInfo& info);

// Environment teardown: the environment's spawners' threads stopped and joined (the children
// they still had are left running; their pidfds are closed).
void CloseAcceptSpawners(napi_env env);

}  // namespace triggerd
