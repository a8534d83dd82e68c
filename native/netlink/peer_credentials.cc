#include "peer_credentials.h"

#include <sys/socket.h>

#include <cerrno>
#include <climits>

#include "system_error.h"

namespace triggerd {

Napi::Value PeerCredentialsOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fd = static_cast<int>(IntegerArgument(env, info[0], "fd", 0, INT_MAX));

  struct ucred cred = {};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    throw MakeSystemError(env, errno, "getsockopt");
  }
  if (len != sizeof(cred)) throw MakeSystemError(env, EINVAL, "getsockopt");

  Napi::Object result = Napi::Object::New(env);
  result.Set("pid", Napi::Number::New(env, cred.pid));
  result.Set("uid", Napi::Number::New(env, cred.uid));
  result.Set("gid", Napi::Number::New(env, cred.gid));
  return result;
}

}  // namespace triggerd
