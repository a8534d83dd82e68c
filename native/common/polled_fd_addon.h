// The per-environment state (napi instance data) of an addon whose open function hands out one
// kind of PolledFdHandle (see polled_fd_handle.h): the handle class of this environment and the
// slot through which the open function passes the fds it opened to the constructor it calls.
// With nothing pending the constructor refuses: JavaScript cannot make a handle by itself.
// Open handles close themselves at teardown (FdPoller's cleanup hook).
#pragma once

#include <napi.h>

namespace triggerd {

template <typename Derived, typename Handle>
class PolledFdAddon : public Napi::Addon<Derived> {
 public:
  using Pending = typename Handle::PendingType;

  PolledFdAddon(const PolledFdAddon&) = delete;
  PolledFdAddon& operator=(const PolledFdAddon&) = delete;

  // The constructor's side of the handover: what CreateHandle left pending, once.
  Pending* TakePending() {
    Pending* pending = pending_;
    pending_ = nullptr;
    return pending;
  }

 protected:
  explicit PolledFdAddon(Napi::Env env)
      : handle_class_(Napi::Persistent(Handle::DefineClass(env))) {}

  // Wraps the opened fds in a new Handle and starts watching. Takes the fds in every case: on
  // failure they are closed (Handle::ClosePending) and the error thrown.
  Napi::Object CreateHandle(Napi::Env env, Pending* opened, Napi::Function on_event,
                            Napi::Function on_error) {
    Napi::Object object;
    pending_ = opened;
    try {
      object = handle_class_.New({on_event, on_error});
    } catch (...) {
      // The constructor takes the fds only once nothing else can fail there.
      pending_ = nullptr;
      Handle::ClosePending(opened);
      throw;
    }
    pending_ = nullptr;
    Handle::Unwrap(object)->Start(env);
    return object;
  }

 private:
  Napi::FunctionReference handle_class_;
  Pending* pending_ = nullptr;
};

}  // namespace triggerd
