// The argument checks and path errors the addons' entry points share: callbacks, paths, and
// system errors that name the path as Node's fs errors do. Built on MakeArgumentError and
// MakeSystemError (netlink/system_error.h, which every addon compiles in).
#pragma once

#include <napi.h>

#include <string>

#include "../netlink/system_error.h"

namespace triggerd {

// `value` must be a function; otherwise a TypeError naming the argument `name`.
inline Napi::Function FunctionArgument(Napi::Env env, const Napi::Value& value, const char* name) {
  if (!value.IsFunction()) {
    throw MakeArgumentError(env, std::string("The \"") + name + "\" argument must be a function");
  }
  return value.As<Napi::Function>();
}

// The "path" argument of an entry point: a non-empty string without NUL bytes.
inline std::string PathArgument(Napi::Env env, const Napi::Value& value) {
  if (!value.IsString()) throw MakeArgumentError(env, "The \"path\" argument must be a string");
  std::string path = value.As<Napi::String>().Utf8Value();
  if (path.empty() || path.find('\0') != std::string::npos) {
    throw MakeArgumentError(env, "The \"path\" argument must be a non-empty path without NUL bytes",
                            "ERR_INVALID_ARG_VALUE");
  }
  return path;
}

// `error` (a system error) with `path` and the path at the end of its message.
inline Napi::Error AddPath(Napi::Env env, Napi::Error error, const std::string& path) {
  error.Set("path", Napi::String::New(env, path));
  error.Set("message", Napi::String::New(
                           env, error.Get("message").ToString().Utf8Value() + " '" + path + "'"));
  return error;
}

inline Napi::Error SystemErrorWithPath(Napi::Env env, int err, const char* syscall,
                                       const std::string& path) {
  return AddPath(env, MakeSystemError(env, err, syscall), path);
}

}  // namespace triggerd
