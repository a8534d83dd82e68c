// Entry point of triggerd_blkid.node: probe(devnode, options) runs libblkid on a threadpool
// thread and resolves with the raw values (see src/native/blkid-addon.ts for the contract).
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "../netlink/system_error.h"
#include "blkid_library.h"
#include "probe_worker.h"

namespace triggerd {

namespace {

// 2^53 - 1: the largest offset a JavaScript number carries exactly.
constexpr int64_t kMaxSafeInteger = 9007199254740991LL;

std::string StringArgument(Napi::Env env, const Napi::Value& value, const char* name) {
  if (!value.IsString()) {
    throw MakeArgumentError(env, std::string("The \"") + name + "\" argument must be a string");
  }
  std::string text = value.As<Napi::String>().Utf8Value();
  // A path or hint with a NUL would be silently cut short by the C calls.
  if (text.empty() || std::memchr(text.data(), '\0', text.size()) != nullptr) {
    throw MakeArgumentError(
        env, std::string("The \"") + name + "\" argument must be a non-empty string without NUL",
        "ERR_INVALID_ARG_VALUE");
  }
  return text;
}

}  // namespace

class BlkidAddon : public Napi::Addon<BlkidAddon> {
 public:
  BlkidAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports, {
                             InstanceMethod<&BlkidAddon::Probe>("probe", napi_enumerable),
                             InstanceMethod<&BlkidAddon::LibraryInfo>("libraryInfo",
                                                                      napi_enumerable),
                         });
  }

 private:
  // probe(devnode: string, options: { offset: number, noraid: boolean, hint?: string })
  Napi::Value Probe(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    ProbeRequest request;
    request.path = StringArgument(env, info[0], "devnode");
    if (!info[1].IsObject()) {
      throw MakeArgumentError(env, "The \"options\" argument must be an object");
    }
    Napi::Object options = info[1].As<Napi::Object>();
    request.offset = IntegerArgument(env, options.Get("offset"), "options.offset", 0,
                                     kMaxSafeInteger);
    Napi::Value noraid = options.Get("noraid");
    if (!noraid.IsBoolean()) {
      throw MakeArgumentError(env, "The \"options.noraid\" argument must be a boolean");
    }
    request.noraid = noraid.As<Napi::Boolean>().Value();
    Napi::Value hint = options.Get("hint");
    if (!hint.IsUndefined()) {
      request.has_hint = true;
      request.hint = StringArgument(env, hint, "options.hint");
    }

    std::string error;
    const BlkidLibrary* library = LoadBlkidLibrary(&error);
    if (library == nullptr) {
      // Not an argument problem and not a per-device failure: the whole builtin is unavailable.
      Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
      Napi::Error failure = Napi::Error::New(env, "libblkid is not available: " + error);
      failure.Set("code", Napi::String::New(env, "ERR_BLKID_UNAVAILABLE"));
      deferred.Reject(failure.Value());
      return deferred.Promise();
    }
    ProbeWorker* worker = new ProbeWorker(env, library, std::move(request));
    Napi::Promise promise = worker->Promise();
    worker->Queue();  // deletes itself after OnOK/OnError
    return promise;
  }

  // libraryInfo(): { available, version?, hint?, error? }
  Napi::Value LibraryInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    std::string error;
    const BlkidLibrary* library = LoadBlkidLibrary(&error);
    result.Set("available", Napi::Boolean::New(env, library != nullptr));
    if (library == nullptr) {
      result.Set("error", Napi::String::New(env, error));
      return result;
    }
    const char* version = nullptr;
    library->get_library_version(&version, nullptr);
    if (version != nullptr) result.Set("version", Napi::String::New(env, version));
    result.Set("hint", Napi::Boolean::New(env, library->probe_set_hint != nullptr));
    return result;
  }
};

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::BlkidAddon;
NODE_API_ADDON(BlkidAddon)
