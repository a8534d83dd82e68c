// Node-style errors for triggerd_socket: the very same helpers as triggerd_native (code, errno,
// syscall; TypeError with a Node-style code for bad arguments). binding.gyp compiles only the .cc
// files of this folder, so this brings the netlink addon's implementation in rather than keeping
// a second copy that could drift. Each addon is its own shared object loaded RTLD_LOCAL.
#include "../netlink/system_error.cc"
