// A clone one addon starts from another's native code: triggerd_spawn.node's prepared launch
// (prepare()), started by triggerd_inotify.node's armed call (armCall's fourth argument) inside
// its wake-up, with no JavaScript between the read and the clone. Both addons build this header,
// so the layout is the same on both sides; the object is recognised by its type tag.
#pragma once

#include <node_api.h>

namespace triggerd {

struct NativeLaunch {
  // Clones and execs the prepared plan once (later calls do nothing). JavaScript thread only;
  // never calls into JavaScript and never throws: a failure is kept for the owner to report.
  void (*launch)(void* context);
  void* context;
};

// On the prepared launch's JavaScript object; its `launcher` property is an External holding the
// NativeLaunch, valid for as long as that object lives.
constexpr napi_type_tag kNativeLaunchTag = {0x7c1e5a9d2b8f4e61ULL, 0x93a04d6ce15b27f8ULL};
constexpr const char* kNativeLaunchProperty = "launcher";

}  // namespace triggerd
