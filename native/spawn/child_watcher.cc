#include "child_watcher.h"

#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <vector>

#include "../netlink/system_error.h"
#include "addon.h"
#include "../common/js_calls.h"

namespace triggerd {

std::atomic<bool> ChildWatcher::process_has_watcher_{false};

namespace {

Napi::PropertyDescriptor Field(const Napi::String& key, napi_value value) {
  return Napi::PropertyDescriptor::Value(static_cast<napi_value>(key), value,
                                         napi_default_jsproperty);
}

}  // namespace

ChildWatcher::ChildWatcher(napi_env env, SpawnAddon* addon, uint64_t id)
    : env_(env), addon_(addon), id_(id) {}

ChildWatcher::~ChildWatcher() = default;

ChildWatcher* ChildWatcher::Start(Napi::Env env, SpawnAddon* addon, Napi::Function on_exits,
                                  Napi::Object handle, uint64_t id) {
  bool expected = false;
  if (!process_has_watcher_.compare_exchange_strong(expected, true)) {
    Napi::Error error = Napi::Error::New(
        env, "this process already watches its children (one watcher per process: waitid(P_ALL) "
             "reaps them all)");
    error.Set("code", Napi::String::New(env, "ERR_WATCHER_ACTIVE"));
    throw error;
  }
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    process_has_watcher_ = false;
    throw MakeSystemError(env, EINVAL, "napi_get_uv_event_loop");
  }

  auto* watcher = new ChildWatcher(env, addon, id);
  try {
    watcher->on_exits_ = Napi::Persistent(on_exits);
    watcher->receiver_ = Napi::Persistent(handle);
    watcher->async_context_ =
        std::make_unique<Napi::AsyncContext>(env, "triggerd:ChildWatcher");
  } catch (...) {
    process_has_watcher_ = false;
    delete watcher;
    throw;
  }
  // From here on the handles are closed through Close(), which also deletes the watcher.
  uv_signal_init(loop, &watcher->signal_);
  watcher->signal_.data = watcher;
  uv_timer_init(loop, &watcher->timer_);
  watcher->timer_.data = watcher;
  watcher->open_handles_ = 2;
  // Without an epoll set of our own, SIGCHLD alone reports the children (pidfds are best effort).
  watcher->pidfds_epoll_ = epoll_create1(EPOLL_CLOEXEC);
  if (watcher->pidfds_epoll_ >= 0) {
    if (uv_poll_init(loop, &watcher->pidfds_poll_, watcher->pidfds_epoll_) == 0) {
      watcher->pidfds_poll_.data = watcher;
      watcher->open_handles_++;
      watcher->pidfds_polled_ = true;
      if (uv_poll_start(&watcher->pidfds_poll_, UV_READABLE, OnPoll) != 0) {
        watcher->pidfds_polled_ = false;
        uv_close(reinterpret_cast<uv_handle_t*>(&watcher->pidfds_poll_), OnHandleClosed);
      }
    } else {
      close(watcher->pidfds_epoll_);
      watcher->pidfds_epoll_ = -1;
    }
  }
  if (napi_add_async_cleanup_hook(env, OnEnvironmentTeardown, watcher, &watcher->cleanup_hook_) !=
      napi_ok) {
    watcher->cleanup_hook_ = nullptr;
    watcher->Close();
    throw MakeSystemError(env, EINVAL, "napi_add_async_cleanup_hook");
  }
  int rc = uv_signal_start(&watcher->signal_, OnSignal, SIGCHLD);
  if (rc != 0) {
    watcher->Close();
    throw MakeSystemError(env, -rc, "uv_signal_start");
  }
  for (const auto& child : addon->children()) {
    if (child.second >= 0) watcher->WatchPidfd(child.first, child.second);
  }
  // Children may have exited before anyone watched (their SIGCHLD is gone): look once, on the
  // next turn of the loop rather than inside watchChildren().
  uv_timer_start(&watcher->timer_, OnTimer, 0, 0);
  return watcher;
}

void ChildWatcher::WatchPidfd(pid_t pid, int pidfd) {
  if (closing_ || !pidfds_polled_ || pidfds_.count(pid) != 0) return;
  epoll_event event = {};
  event.events = EPOLLIN;
  event.data.u64 = static_cast<uint64_t>(pid);
  if (epoll_ctl(pidfds_epoll_, EPOLL_CTL_ADD, pidfd, &event) == 0) pidfds_[pid] = pidfd;
}

bool ChildWatcher::TakeBackBatchPidfd(int fd) {
  auto found = std::find(batch_pidfds_.begin(), batch_pidfds_.end(), fd);
  if (found == batch_pidfds_.end()) return false;
  batch_pidfds_.erase(found);
  return true;
}

void ChildWatcher::UnwatchPidfd(pid_t pid) {
  auto found = pidfds_.find(pid);
  if (found == pidfds_.end()) return;
  // Out of the set at once, so the caller may close the fd (or keep it) right after.
  epoll_ctl(pidfds_epoll_, EPOLL_CTL_DEL, found->second, nullptr);
  pidfds_.erase(found);
}

void ChildWatcher::Close() {
  if (closing_) return;
  closing_ = true;
  if (addon_ != nullptr) addon_->WatcherClosing(this);
  addon_ = nullptr;
  process_has_watcher_ = false;
  pidfds_.clear();
  if (pidfds_polled_) {
    pidfds_polled_ = false;
    uv_poll_stop(&pidfds_poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(&pidfds_poll_), OnHandleClosed);
  }
  if (pidfds_epoll_ >= 0) close(pidfds_epoll_);  // libuv no longer watches it
  pidfds_epoll_ = -1;
  uv_signal_stop(&signal_);
  uv_close(reinterpret_cast<uv_handle_t*>(&signal_), OnHandleClosed);
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), OnHandleClosed);
  if (!in_callback_ && !tearing_down_) ReleaseJs();
}

void ChildWatcher::ReleaseJs() {
  on_exits_.Reset();
  receiver_.Reset();
  async_context_.reset();
}

void ChildWatcher::SetReferenced(bool referenced) {
  if (closing_ || referenced == referenced_) return;
  referenced_ = referenced;
  auto apply = [referenced](uv_handle_t* handle) {
    if (referenced) {
      uv_ref(handle);
    } else {
      uv_unref(handle);
    }
  };
  apply(reinterpret_cast<uv_handle_t*>(&signal_));
  apply(reinterpret_cast<uv_handle_t*>(&timer_));
  if (pidfds_polled_) apply(reinterpret_cast<uv_handle_t*>(&pidfds_poll_));
}

void ChildWatcher::WakeSoon() {
  if (!closing_) uv_timer_start(&timer_, OnTimer, 0, 0);
}

void ChildWatcher::OnSignal(uv_signal_t* handle, int /*signum*/) {
  static_cast<ChildWatcher*>(handle->data)->HandleWakeUp(-1);
}

void ChildWatcher::OnTimer(uv_timer_t* handle) {
  static_cast<ChildWatcher*>(handle->data)->HandleWakeUp(-1);
}

void ChildWatcher::OnPoll(uv_poll_t* handle, int /*status*/, int /*events*/) {
  auto* watcher = static_cast<ChildWatcher*>(handle->data);
  if (!watcher->pidfds_polled_) return;
  // Level-triggered: a pidfd stays readable until its child is reaped and it leaves the set, so
  // this only learns which children exited; waitid(P_ALL) in HandleWakeUp does the reaping.
  epoll_event events[64];
  int n = epoll_wait(watcher->pidfds_epoll_, events, 64, 0);
  watcher->HandleWakeUp(-1);
  for (int i = 0; i < n && watcher->addon_ != nullptr && !watcher->closing_; i++) {
    pid_t pid = static_cast<pid_t>(events[i].data.u64);
    if (watcher->pidfds_.count(pid) == 0) continue;  // reaped above
    // Its pidfd says "exited" but there is nothing left to reap: someone else reaped it (a
    // waitpid() elsewhere in the process). It is gone; stop polling a pidfd that stays readable.
    siginfo_t info = {};
    if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0 &&
        errno == ECHILD) {
      watcher->addon_->ForgetChild(pid);
    }
  }
}

void ChildWatcher::OnHandleClosed(uv_handle_t* handle) {
  static_cast<ChildWatcher*>(handle->data)->HandleClosed();
}

void ChildWatcher::HandleClosed() {
  if (--open_handles_ > 0 || !closing_) return;
  // Every handle is closed: now a teardown that waits for us may go on (and unload us).
  // Even in a teardown the environment is alive until the hook is removed, and it does not free
  // references we made: release them (the destructor does) before we let it go on.
  ReleaseJs();
  if (cleanup_hook_ != nullptr) napi_remove_async_cleanup_hook(cleanup_hook_);
  delete this;
}

void ChildWatcher::OnEnvironmentTeardown(napi_async_cleanup_hook_handle /*hook*/, void* data) {
  auto* watcher = static_cast<ChildWatcher*>(data);
  watcher->tearing_down_ = true;
  watcher->Close();
}

void ChildWatcher::HandleWakeUp(pid_t polled_pid) {
  if (closing_ || addon_ == nullptr) return;
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  // Shutting down: leave the zombies; the process is going away.
  if (!CanCallIntoJs(env)) return;

  in_callback_ = true;
  // The pidfds of this batch's children are closed only once onExits has returned: until then
  // the caller may still hold them for exits it has not handled yet (a signal through one must
  // find the reaped process, ESRCH, not whatever a spawn inside onExits got under that number).
  batch_pidfds_.clear();
  try {
    Napi::Array batch = Napi::Array::New(env);
    uint32_t count = Drain(env, batch);
    if (count == kMaxExitsPerBatch) {
      uv_timer_start(&timer_, OnTimer, 0, 0);
    } else if (polled_pid > 0 && addon_->children().count(polled_pid) != 0) {
      // Its pidfd said "exited" but waitid found nothing of it: someone else reaped it (a
      // waitpid() elsewhere in the process). It is gone; stop polling a pidfd that stays readable.
      addon_->ForgetChild(polled_pid);
    }
    if (count > 0 && !on_exits_.IsEmpty() && async_context_ != nullptr) {
      // MakeCallback, so process.nextTick and promise jobs queued by onExits run when it returns.
      on_exits_.MakeCallback(receiver_.Value(), {batch}, *async_context_);
    }
  } catch (const Napi::Error& error) {
    RaiseUncaught(env, error.Value());
  } catch (const std::exception& exception) {
    RaiseUncaught(env, exception);
  }
  std::vector<int> pidfds;
  pidfds.swap(batch_pidfds_);
  for (int fd : pidfds) close(fd);
  in_callback_ = false;
  if (closing_ && !tearing_down_) ReleaseJs();  // close() ran inside onExits
}

uint32_t ChildWatcher::Drain(Napi::Env env, Napi::Array batch) {
  Napi::String pid_key = Napi::String::New(env, "pid");
  Napi::String code_key = Napi::String::New(env, "code");
  Napi::String status_key = Napi::String::New(env, "status");
  Napi::String own_key = Napi::String::New(env, "ownChild");
  Napi::String exited = Napi::String::New(env, "exited");
  Napi::String killed = Napi::String::New(env, "killed");
  Napi::String dumped = Napi::String::New(env, "dumped");

  uint32_t count = 0;
  // Exits held back while spawnAsync() calls were on their way, now sorted out.
  for (const ReadyExit& ready : addon_->TakeReadyExits(kMaxExitsPerBatch)) {
    if (ready.own) addon_->ForgetChild(ready.pid, &batch_pidfds_);
    napi_value code = ready.code == CLD_EXITED   ? static_cast<napi_value>(exited)
                      : ready.code == CLD_DUMPED ? static_cast<napi_value>(dumped)
                                                 : static_cast<napi_value>(killed);
    Napi::Object item = Napi::Object::New(env);
    item.DefineProperties({
        Field(pid_key, Napi::Number::New(env, ready.pid)),
        Field(code_key, code),
        Field(status_key, Napi::Number::New(env, ready.status)),
        Field(own_key, Napi::Boolean::New(env, ready.own)),
    });
    batch.Set(count++, item);
  }
  while (count < kMaxExitsPerBatch) {
    siginfo_t info = {};
    if (waitid(P_ALL, 0, &info, WEXITED | WNOHANG) != 0) {
      if (errno == EINTR) continue;
      break;  // ECHILD: no children at all
    }
    if (info.si_pid == 0) break;  // children, none of them exited
    bool own = addon_->ForgetChild(info.si_pid, &batch_pidfds_);
    // Perhaps the child of a spawnAsync() whose pid is not delivered yet: held back until then.
    if (!own && addon_->DeferExit(info.si_pid, info.si_code, info.si_status)) continue;
    napi_value code = info.si_code == CLD_EXITED   ? static_cast<napi_value>(exited)
                      : info.si_code == CLD_DUMPED ? static_cast<napi_value>(dumped)
                                                   : static_cast<napi_value>(killed);
    Napi::Object item = Napi::Object::New(env);
    item.DefineProperties({
        Field(pid_key, Napi::Number::New(env, info.si_pid)),
        Field(code_key, code),
        Field(status_key, Napi::Number::New(env, info.si_status)),
        Field(own_key, Napi::Boolean::New(env, own)),
    });
    batch.Set(count++, item);
  }
  return count;
}

}  // namespace triggerd
