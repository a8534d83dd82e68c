// Errors as they cross into JavaScript: Node-style system errors (code, errno, syscall) and
// argument TypeErrors, plus the integer argument checks every entry point shares.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace triggerd {

// An Error shaped like Node's own fs/net errors: message "CODE: description, syscall",
// `code` ('EBADF'), `errno` (negative, -EBADF, as Node reports it) and `syscall`.
// `err` is a positive errno value.
Napi::Error MakeSystemError(Napi::Env env, int err, const char* syscall);

// A TypeError with a Node-style `code` (ERR_INVALID_ARG_TYPE / ERR_INVALID_ARG_VALUE).
Napi::TypeError MakeArgumentError(Napi::Env env, const std::string& message,
                                  const char* code = "ERR_INVALID_ARG_TYPE");

// `value` must be a Number holding an integer in [min, max]; throws a TypeError naming `name`.
int64_t IntegerArgument(Napi::Env env, const Napi::Value& value, const char* name, int64_t min,
                        int64_t max);

}  // namespace triggerd
