// Node-style errors for triggerd_notify: the very same helpers as triggerd_native, so both addons
// give errors one shape (code, errno, syscall; TypeError with a Node-style code for bad
// arguments). binding.gyp compiles only the .cc files of this folder, so this file brings the
// netlink addon's implementation in rather than keeping a second copy that could drift.
// Each addon is its own shared object loaded RTLD_LOCAL by Node, so the symbols do not clash.
#include "../netlink/system_error.cc"
