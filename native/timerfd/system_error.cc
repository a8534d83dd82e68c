// Node-style errors for triggerd_timerfd: the netlink addon's implementation compiled in here, so
// every addon gives errors one shape (code, errno, syscall; TypeError for bad arguments).
// Each addon is its own shared object loaded RTLD_LOCAL by Node, so the symbols do not clash.
#include "../netlink/system_error.cc"
