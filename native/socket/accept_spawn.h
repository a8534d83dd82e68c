// acceptSpawn(): the Accept=yes fast path. Four threads of its own wait (one epoll set) on one
// listening socket and on the pidfds of the children they started; per connection a thread
// accepts, checks MaxConnections against the spawner's live count (children plus clones under
// way; exits that are ready are reaped before a refusal), clones the child from a plan built once
// in TypeScript (the connection as the plan's connection fds, REMOTE_ADDR/REMOTE_PORT added)
// without holding the lock, closes its copy of the connection, and queues a record. Exec resets
// a child's exit signal to SIGCHLD, so the spawn addon's reaper may take an exit first: the
// record then has no status (src/core/accept-fast-path.ts gets it from that reaper). JavaScript
// gets the records in batches, one call per wake-up of its loop: started, failed, refused,
// exited, accept-error.
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
