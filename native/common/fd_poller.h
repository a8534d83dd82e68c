// Watching one fd for readability with uv_poll on a Node environment's loop: the part every
// socket-like object of the addons (uevent socket, notify socket, inotify handle, ...) shares.
#pragma once

#include <node_api.h>
#include <uv.h>

namespace triggerd {

// What an FdPoller reports to the object that owns it.
class FdPollerClient {
 public:
  // A wake-up (status < 0: libuv's error, e.g. UV_EBADF after POLLERR; the handle is stopped).
  virtual void OnReadable(int status) = 0;
  // The environment is going away (a worker ends) while still watching: close everything now,
  // without calling into JavaScript.
  virtual void OnEnvironmentTeardown() = 0;

 protected:
  ~FdPollerClient() = default;
};

class FdPoller {
 public:
  FdPoller() = default;
  FdPoller(const FdPoller&) = delete;
  FdPoller& operator=(const FdPoller&) = delete;
  ~FdPoller() { Close(); }

  // Starts watching `fd` for `client`. Returns 0, or a libuv error (negative) with `*failed`
  // naming the step; on failure nothing is left open (the fd stays the caller's). `events` is
  // uv_poll's mask (UV_READABLE by default; UV_PRIORITIZED for POLLPRI, as /proc/self/mountinfo
  // signals changes); Resume() watches the same events again.
  int Start(napi_env env, int fd, FdPollerClient* client, const char** failed,
            int events = UV_READABLE);
  // uv_poll_stop / uv_poll_start again; Resume returns 0 or a libuv error.
  void Pause();
  int Resume();
  // Whether the handle keeps the loop alive (uv_ref / uv_unref).
  void Ref(bool keep_loop_alive);
  // Stops watching and hands the handle to uv_close. Idempotent; never calls into JavaScript.
  void Close();
  bool started() const { return handle_ != nullptr; }

 private:
  // The uv handle lives on its own: libuv owns it from uv_close() until the close callback,
  // which may come after the poller is gone. Its async cleanup hook makes the environment's
  // teardown close it and wait for that close callback: otherwise the callback could run after
  // Node has unloaded the library.
  struct Handle {
    uv_poll_t poll;
    FdPollerClient* client;  // nullptr once closing
    int events;              // the uv_poll mask Start() was given
    napi_async_cleanup_hook_handle cleanup_hook;
  };

  static void OnPoll(uv_poll_t* poll, int status, int events);
  static void OnClosed(uv_handle_t* handle);
  static void OnTeardown(napi_async_cleanup_hook_handle hook, void* data);

  Handle* handle_ = nullptr;
};

}  // namespace triggerd
