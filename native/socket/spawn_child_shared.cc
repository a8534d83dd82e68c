// The child side of native/spawn (vfork-style clone, ChildPlan applied with raw system calls) and
// its plan reader, compiled into triggerd_socket as well, for acceptSpawn (accept_spawn.cc).
// binding.gyp compiles the .cc files of this folder; including the sources (as system_error.cc
// does) keeps one copy of the child code rather than a second one that could drift. Each addon
// is its own shared object loaded RTLD_LOCAL, so the symbols do not clash.
#include "../spawn/spawn_child.cc"
#include "../spawn/spawn_plan.cc"
