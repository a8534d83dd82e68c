#include "fd_poller.h"

#include <memory>

namespace triggerd {

int FdPoller::Start(napi_env env, int fd, FdPollerClient* client, const char** failed,
                    int events) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    *failed = "napi_get_uv_event_loop";
    return UV_EINVAL;
  }
  auto handle = std::make_unique<Handle>();
  int rc = uv_poll_init(loop, &handle->poll, fd);
  if (rc != 0) {
    *failed = "uv_poll_init";  // a failed init leaves nothing to uv_close
    return rc;
  }
  handle->client = client;
  handle->events = events;
  handle->cleanup_hook = nullptr;
  handle->poll.data = handle.get();
  handle_ = handle.release();
  if (napi_add_async_cleanup_hook(env, OnTeardown, handle_, &handle_->cleanup_hook) != napi_ok) {
    handle_->cleanup_hook = nullptr;
    *failed = "napi_add_async_cleanup_hook";
    Close();
    return UV_EINVAL;
  }
  rc = uv_poll_start(&handle_->poll, events, OnPoll);
  if (rc != 0) {
    *failed = "uv_poll_start";
    Close();
  }
  return rc;
}

void FdPoller::Pause() {
  if (handle_ != nullptr) uv_poll_stop(&handle_->poll);
}

int FdPoller::Resume() {
  if (handle_ == nullptr) return UV_EBADF;
  return uv_poll_start(&handle_->poll, handle_->events, OnPoll);
}

void FdPoller::Ref(bool keep_loop_alive) {
  if (handle_ == nullptr) return;
  auto* h = reinterpret_cast<uv_handle_t*>(&handle_->poll);
  if (keep_loop_alive) {
    uv_ref(h);
  } else {
    uv_unref(h);
  }
}

void FdPoller::Close() {
  if (handle_ == nullptr) return;
  uv_poll_stop(&handle_->poll);
  handle_->client = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_->poll), OnClosed);
  handle_ = nullptr;
}

void FdPoller::OnPoll(uv_poll_t* poll, int status, int /*events*/) {
  auto* handle = static_cast<Handle*>(poll->data);
  if (handle->client != nullptr) handle->client->OnReadable(status);
}

void FdPoller::OnClosed(uv_handle_t* raw) {
  auto* handle = static_cast<Handle*>(raw->data);
  // Only now may a teardown that is waiting for us go on (and unload the library).
  if (handle->cleanup_hook != nullptr) napi_remove_async_cleanup_hook(handle->cleanup_hook);
  delete handle;
}

void FdPoller::OnTeardown(napi_async_cleanup_hook_handle /*hook*/, void* data) {
  auto* handle = static_cast<Handle*>(data);
  // Still open: the client closes now. Otherwise uv_close already ran and OnClosed will finish.
  if (handle->client != nullptr) handle->client->OnEnvironmentTeardown();
}

}  // namespace triggerd
