// The Node-style error helpers are shared with native/netlink (same messages, codes and argument
// checks in every addon); binding.gyp compiles only this directory's files for this target.
#include "../netlink/system_error.cc"
