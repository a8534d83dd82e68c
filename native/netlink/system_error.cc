#include "system_error.h"

#include <uv.h>

#include <cmath>

namespace triggerd {

Napi::Error MakeSystemError(Napi::Env env, int err, const char* syscall) {
  // libuv's error numbers on Unix are the negated errno values, which is also what Node puts in
  // `errno`, so uv's tables give the same code and text that Node's own errors carry.
  char name[64];
  char description[256];
  uv_err_name_r(-err, name, sizeof(name));
  uv_strerror_r(-err, description, sizeof(description));
  std::string message = std::string(name) + ": " + description + ", " + syscall;
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("errno", Napi::Number::New(env, -err));
  error.Set("code", Napi::String::New(env, name));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

Napi::TypeError MakeArgumentError(Napi::Env env, const std::string& message, const char* code) {
  Napi::TypeError error = Napi::TypeError::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

int64_t IntegerArgument(Napi::Env env, const Napi::Value& value, const char* name, int64_t min,
                        int64_t max) {
  std::string range = std::to_string(min) + ".." + std::to_string(max);
  if (!value.IsNumber()) {
    throw MakeArgumentError(
        env, std::string("The \"") + name + "\" argument must be an integer in " + range);
  }
  double number = value.As<Napi::Number>().DoubleValue();
  // The range check comes first so the cast below never sees NaN, infinities or huge values.
  if (!(number >= static_cast<double>(min) && number <= static_cast<double>(max)) ||
      std::trunc(number) != number) {
    throw MakeArgumentError(env,
                            std::string("The \"") + name + "\" argument must be an integer in " +
                                range + ", got " + value.ToString().Utf8Value(),
                            "ERR_INVALID_ARG_VALUE");
  }
  return static_cast<int64_t>(number);
}

}  // namespace triggerd
