// Entry point of triggerd_libmount.node: mount(request) and umount(request) run libmount on a
// threadpool thread and resolve with mount(8)'s exit code and libmount's message (see
// src/native/libmount-addon.ts for the contract).
#include <napi.h>

#include <cstring>
#include <string>
#include <utility>

#include "../netlink/system_error.h"
#include "libmount_library.h"
#include "mount_worker.h"

namespace triggerd {

namespace {

// A string argument without NUL (the C calls would silently cut it short); empty only if allowed.
std::string StringField(Napi::Env env, const Napi::Object& object, const char* key,
                        const char* name, bool allow_empty) {
  Napi::Value value = object.Get(key);
  if (!value.IsString()) {
    throw MakeArgumentError(env, std::string("The \"") + name + "\" argument must be a string");
  }
  std::string text = value.As<Napi::String>().Utf8Value();
  if ((!allow_empty && text.empty()) || std::memchr(text.data(), '\0', text.size()) != nullptr) {
    throw MakeArgumentError(env,
                            std::string("The \"") + name + "\" argument must be a " +
                                (allow_empty ? "" : "non-empty ") + "string without NUL",
                            "ERR_INVALID_ARG_VALUE");
  }
  return text;
}

bool BooleanField(Napi::Env env, const Napi::Object& object, const char* key, const char* name) {
  Napi::Value value = object.Get(key);
  if (!value.IsBoolean()) {
    throw MakeArgumentError(env, std::string("The \"") + name + "\" argument must be a boolean");
  }
  return value.As<Napi::Boolean>().Value();
}

Napi::Object RequestArgument(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) {
    throw MakeArgumentError(info.Env(), "The \"request\" argument must be an object");
  }
  return info[0].As<Napi::Object>();
}

std::string TargetField(Napi::Env env, const Napi::Object& object) {
  std::string target = StringField(env, object, "target", "request.target", false);
  if (target[0] != '/') {
    throw MakeArgumentError(env, "The \"request.target\" argument must be an absolute path",
                            "ERR_INVALID_ARG_VALUE");
  }
  return target;
}

}  // namespace

class LibmountAddon : public Napi::Addon<LibmountAddon> {
 public:
  LibmountAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports,
                {
                    InstanceMethod<&LibmountAddon::Mount>("mount", napi_enumerable),
                    InstanceMethod<&LibmountAddon::Umount>("umount", napi_enumerable),
                    InstanceMethod<&LibmountAddon::LibraryInfo>("libraryInfo", napi_enumerable),
                });
  }

 private:
  // mount({ source, target, fstype, options, sloppy, readWriteOnly })
  Napi::Value Mount(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object r = RequestArgument(info);
    LibmountRequest request;
    request.source = StringField(env, r, "source", "request.source", false);
    request.target = TargetField(env, r);
    request.fstype = StringField(env, r, "fstype", "request.fstype", true);
    request.options = StringField(env, r, "options", "request.options", true);
    request.sloppy = BooleanField(env, r, "sloppy", "request.sloppy");
    request.rwonly = BooleanField(env, r, "readWriteOnly", "request.readWriteOnly");
    return Queue(env, std::move(request));
  }

  // umount({ target, lazy, force })
  Napi::Value Umount(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object r = RequestArgument(info);
    LibmountRequest request;
    request.umount = true;
    request.target = TargetField(env, r);
    request.lazy = BooleanField(env, r, "lazy", "request.lazy");
    request.force = BooleanField(env, r, "force", "request.force");
    return Queue(env, std::move(request));
  }

  Napi::Value Queue(Napi::Env env, LibmountRequest request) {
    std::string error;
    const LibmountLibrary* library = LoadLibmountLibrary(&error);
    if (library == nullptr) {
      // Not a failure of this mount: the in-process path is unavailable (run mount(8)).
      Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
      Napi::Error failure = Napi::Error::New(env, "libmount is not available: " + error);
      failure.Set("code", Napi::String::New(env, "ERR_LIBMOUNT_UNAVAILABLE"));
      deferred.Reject(failure.Value());
      return deferred.Promise();
    }
    MountWorker* worker = new MountWorker(env, library, std::move(request));
    Napi::Promise promise = worker->Promise();
    worker->Queue();  // deletes itself after OnOK/OnError
    return promise;
  }

  // libraryInfo(): { available, version?, error? }
  Napi::Value LibraryInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object result = Napi::Object::New(env);
    std::string error;
    const LibmountLibrary* library = LoadLibmountLibrary(&error);
    result.Set("available", Napi::Boolean::New(env, library != nullptr));
    if (library == nullptr) {
      result.Set("error", Napi::String::New(env, error));
      return result;
    }
    const char* version = nullptr;
    library->get_library_version(&version);
    if (version != nullptr) result.Set("version", Napi::String::New(env, version));
    return result;
  }
};

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::LibmountAddon;
NODE_API_ADDON(LibmountAddon)
