#include "js_calls.h"

namespace triggerd {

bool CanCallIntoJs(napi_env env) {
  napi_value probe = nullptr;
  if (napi_create_object(env, &probe) != napi_ok) return false;
  return napi_define_properties(env, probe, 0, nullptr) == napi_ok;
}

void RaiseUncaught(Napi::Env env, napi_value error) {
  if (error != nullptr && CanCallIntoJs(env)) napi_fatal_exception(env, error);
}

void RaiseUncaught(Napi::Env env, const Napi::Error& error) { RaiseUncaught(env, error.Value()); }

void RaiseUncaught(Napi::Env env, const std::exception& exception) {
  if (!CanCallIntoJs(env)) return;
  napi_value error = nullptr;
  napi_value message = nullptr;
  if (napi_create_string_utf8(env, exception.what(), NAPI_AUTO_LENGTH, &message) == napi_ok &&
      napi_create_error(env, nullptr, message, &error) == napi_ok) {
    napi_fatal_exception(env, error);
  }
}

}  // namespace triggerd
