// Entry point of triggerd_libmount.node: mount(request) and umount(request) run libmount on a
// threadpool thread and resolve with mount(8)'s exit code and libmount's message; load() loads
// libmount.so.1 on a threadpool thread (dlopen of libmount, libblkid, libselinux and libpcre2
// takes milliseconds, tens of them on a busy machine: never on the event loop). See
// src/native/libmount-addon.ts for the contract.
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

// libraryInfo()'s object: { available, version?, error? }.
Napi::Object LibraryInfoObject(Napi::Env env, const LibmountLibrary* library,
                               const std::string& error) {
  Napi::Object result = Napi::Object::New(env);
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

// load(): LoadLibmountLibrary on a threadpool thread.
class LoadWorker : public Napi::AsyncWorker {
 public:
  explicit LoadWorker(Napi::Env env)
      : Napi::AsyncWorker(env, "triggerd:libmount-load"),
        deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override { library_ = LoadLibmountLibrary(&error_); }

  void OnOK() override {
    Napi::HandleScope scope(Env());
    deferred_.Resolve(LibraryInfoObject(Env(), library_, error_));
  }

  void OnError(const Napi::Error& error) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(error.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  const LibmountLibrary* library_ = nullptr;
  std::string error_;
};

}  // namespace

class LibmountAddon : public Napi::Addon<LibmountAddon> {
 public:
  LibmountAddon(Napi::Env env, Napi::Object exports) {
    DefineAddon(exports,
                {
                    InstanceMethod<&LibmountAddon::Mount>("mount", napi_enumerable),
                    InstanceMethod<&LibmountAddon::Umount>("umount", napi_enumerable),
                    InstanceMethod<&LibmountAddon::Load>("load", napi_enumerable),
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
    MountWorker* worker = new MountWorker(env, std::move(request));
    Napi::Promise promise = worker->Promise();
    worker->Queue();  // deletes itself after OnOK/OnError
    return promise;
  }

  // load(): Promise<{ available, version?, error? }>, the loading done on the threadpool.
  Napi::Value Load(const Napi::CallbackInfo& info) {
    LoadWorker* worker = new LoadWorker(info.Env());
    Napi::Promise promise = worker->Promise();
    worker->Queue();  // deletes itself after OnOK/OnError
    return promise;
  }

  // libraryInfo(): { available, version?, error? }, loading the library here if load() has not.
  Napi::Value LibraryInfo(const Napi::CallbackInfo& info) {
    std::string error;
    const LibmountLibrary* library = LoadLibmountLibrary(&error);
    return LibraryInfoObject(info.Env(), library, error);
  }
};

}  // namespace triggerd

// The macro pastes the name into identifiers, so it takes an unqualified one.
using triggerd::LibmountAddon;
NODE_API_ADDON(LibmountAddon)
