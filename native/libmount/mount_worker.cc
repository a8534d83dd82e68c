#include "mount_worker.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include "../netlink/system_error.h"

namespace triggerd {

namespace {

// mount(8) prints into a buffer of BUFSIZ; libmount's messages are one line.
constexpr size_t kMessageBytes = 8192;

class ContextGuard {
 public:
  ContextGuard(const LibmountLibrary* library, LibmntContext cxt) : library_(library), cxt_(cxt) {}
  ~ContextGuard() {
    if (cxt_ != nullptr) library_->free_context(cxt_);
  }
  ContextGuard(const ContextGuard&) = delete;
  ContextGuard& operator=(const ContextGuard&) = delete;

 private:
  const LibmountLibrary* library_;
  LibmntContext cxt_;
};

}  // namespace

MountWorker::MountWorker(Napi::Env env, LibmountRequest request)
    : Napi::AsyncWorker(env, "triggerd:libmount"),
      deferred_(Napi::Promise::Deferred::New(env)),
      request_(std::move(request)) {}

void MountWorker::Execute() {
  library_ = LoadLibmountLibrary(&load_error_);
  if (library_ == nullptr) return;
  const LibmountLibrary* l = library_;
  LibmntContext cxt = l->new_context();
  if (cxt == nullptr) {
    err_ = ENOMEM;
    step_ = "mnt_new_context";
    return;
  }
  ContextGuard guard(l, cxt);
  // libmount's setters return a negative errno (only -ENOMEM or -EINVAL in practice).
  auto check = [this](int r, const char* step) {
    if (r < 0 && err_ == 0) {
      err_ = -r;
      step_ = step;
    }
    return r >= 0;
  };
  const LibmountRequest& q = request_;
  // A helper would be a fork from this multithreaded process, and its child would be reaped by
  // libmount's waitpid behind the daemon's back: TypeScript runs mount(8) for those units.
  bool ok = check(l->context_disable_helpers(cxt, 1), "mnt_context_disable_helpers");
  ok = ok && check(l->context_set_target(cxt, q.target.c_str()), "mnt_context_set_target");
  if (q.umount) {
    ok = ok && check(l->context_disable_canonicalize(cxt, 1), "mnt_context_disable_canonicalize");
    if (q.lazy) ok = ok && check(l->context_enable_lazy(cxt, 1), "mnt_context_enable_lazy");
    if (q.force) ok = ok && check(l->context_enable_force(cxt, 1), "mnt_context_enable_force");
  } else {
    ok = ok && check(l->context_set_source(cxt, q.source.c_str()), "mnt_context_set_source");
    if (!q.fstype.empty())
      ok = ok && check(l->context_set_fstype(cxt, q.fstype.c_str()), "mnt_context_set_fstype");
    if (!q.options.empty())
      ok = ok && check(l->context_set_options(cxt, q.options.c_str()), "mnt_context_set_options");
    if (q.sloppy) ok = ok && check(l->context_enable_sloppy(cxt, 1), "mnt_context_enable_sloppy");
    if (q.rwonly)
      ok = ok && check(l->context_enable_rwonly_mount(cxt, 1), "mnt_context_enable_rwonly_mount");
  }
  if (!ok) return;
  rc_ = q.umount ? l->context_umount(cxt) : l->context_mount(cxt);
  char buf[kMessageBytes];
  buf[0] = '\0';
  exit_code_ = l->context_get_excode(cxt, rc_, buf, sizeof buf);
  buf[sizeof buf - 1] = '\0';
  message_.assign(buf, strnlen(buf, sizeof buf));
  syscall_called_ = l->context_syscall_called(cxt) == 1;
  syscall_errno_ = syscall_called_ ? l->context_get_syscall_errno(cxt) : 0;
}

void MountWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (library_ == nullptr) {
    // Not a failure of this mount: the in-process path is unavailable (run mount(8)).
    Napi::Error failure = Napi::Error::New(env, "libmount is not available: " + load_error_);
    failure.Set("code", Napi::String::New(env, "ERR_LIBMOUNT_UNAVAILABLE"));
    deferred_.Reject(failure.Value());
    return;
  }
  if (err_ != 0) {
    deferred_.Reject(MakeSystemError(env, err_, step_).Value());
    return;
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("rc", Napi::Number::New(env, rc_));
  result.Set("exitCode", Napi::Number::New(env, exit_code_));
  result.Set("message", Napi::String::New(env, message_));
  result.Set("syscallCalled", Napi::Boolean::New(env, syscall_called_));
  result.Set("syscallErrno", Napi::Number::New(env, syscall_errno_));
  deferred_.Resolve(result);
}

void MountWorker::OnError(const Napi::Error& error) {
  Napi::HandleScope scope(Env());
  deferred_.Reject(error.Value());
}

}  // namespace triggerd
