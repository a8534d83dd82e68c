#include "mountinfo_watch.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "../netlink/system_error.h"
#include "addon.h"

namespace triggerd {

Napi::Function MountInfoWatch::DefineClass(Napi::Env env) {
  return ObjectWrap<MountInfoWatch>::DefineClass(
      env, kClassName,
      {
          CloseMethod(),
          RefMethod(),
          UnrefMethod(),
          ClosedAccessor(),
          InstanceAccessor<&MountInfoWatch::GetWakeups>("wakeups"),
      });
}

MountInfoWatch::MountInfoWatch(const Napi::CallbackInfo& info) : Base(info) { TakePending(); }

void MountInfoWatch::OnWakeUp(Napi::Env env, int status) {
  wakeups_ += 1;
  // libuv reports POLLERR|POLLPRI as status 0 with UV_PRIORITIZED and keeps watching. A status
  // < 0 (POLLERR alone) stopped the handle: the fd is unusable, which onError reports.
  bool fd_gone = status < 0 || fd_ < 0 || fcntl(fd_, F_GETFD) < 0;
  in_callback_ = true;
  if (fd_gone) {
    CallError(env, EBADF, "poll");
  } else {
    CallGuarded(env, [&] { CallEvent(env.Undefined()); });
  }
  in_callback_ = false;
  FinishWakeUp();
}

Napi::Value MountInfoWatch::GetWakeups(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), wakeups_);
}

}  // namespace triggerd
