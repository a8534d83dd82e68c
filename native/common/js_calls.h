// Calling into JavaScript from a native callback that has no JavaScript caller (a uv_poll
// wake-up, a child's exit): the checks and error reporting every addon's watched object needs.
#pragma once

#include <napi.h>

#include <exception>

namespace triggerd {

// False once the environment is shutting down (a worker being terminated): calls that may run
// JavaScript then fail with napi_pending_exception although none is pending. Node-API 8 has no
// direct query; an empty napi_define_properties goes through the same check.
bool CanCallIntoJs(napi_env env);

// An exception thrown by a callback has no JavaScript caller to go to: raise it as uncaught, as
// Node does for a throwing event listener. During shutdown the "exception" is the termination
// itself and there is nobody left to tell.
void RaiseUncaught(Napi::Env env, napi_value error);
void RaiseUncaught(Napi::Env env, const Napi::Error& error);
// Anything else that escaped (std::bad_alloc from a string) goes the same way, as an Error.
void RaiseUncaught(Napi::Env env, const std::exception& exception);

// Runs `body`, which may call into JavaScript from a native callback: whatever it throws is
// raised as uncaught (above), never thrown on into libuv.
template <typename Body>
void CallGuarded(Napi::Env env, Body&& body) {
  try {
    body();
  } catch (const Napi::Error& error) {
    RaiseUncaught(env, error);
  } catch (const std::exception& exception) {
    RaiseUncaught(env, exception);
  }
}

}  // namespace triggerd
