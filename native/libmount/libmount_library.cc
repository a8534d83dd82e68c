#include "libmount_library.h"

#include <dlfcn.h>

#include <mutex>

#if defined(__has_include)
#if __has_include(<libmount/libmount.h>)
// The headers are there (libmount-dev): check that the declarations above say what they say.
#include <libmount/libmount.h>
static_assert(triggerd::kMntExSuccess == MNT_EX_SUCCESS, "MNT_EX_SUCCESS");
static_assert(triggerd::kMntExSyserr == MNT_EX_SYSERR, "MNT_EX_SYSERR");
static_assert(triggerd::kMntExFail == MNT_EX_FAIL, "MNT_EX_FAIL");
#include <type_traits>
#define TRIGGERD_CHECK_PROTOTYPE(field, symbol)                                             \
  static_assert(std::is_same<decltype(&symbol),                                             \
                             triggerd::internal::WithHeaderContext<                         \
                                 decltype(triggerd::LibmountLibrary::field)>::type>::value, \
                #symbol " has another signature in <libmount/libmount.h>")
namespace triggerd {
namespace internal {
// The same function type with `struct libmnt_context*` where ours has the opaque LibmntContext.
template <typename T>
struct Swap {
  using type = T;
};
template <>
struct Swap<LibmntContext> {
  using type = struct libmnt_context*;
};
template <typename Fn>
struct WithHeaderContext;
template <typename R, typename... Args>
struct WithHeaderContext<R (*)(Args...)> {
  using type = typename Swap<R>::type (*)(typename Swap<Args>::type...);
};
}  // namespace internal
}  // namespace triggerd
// mnt_new_context carries warn_unused_result, which a template argument cannot: check its call.
static_assert(std::is_same<decltype(mnt_new_context()), struct libmnt_context*>::value,
              "mnt_new_context has another signature in <libmount/libmount.h>");
TRIGGERD_CHECK_PROTOTYPE(free_context, mnt_free_context);
TRIGGERD_CHECK_PROTOTYPE(context_set_source, mnt_context_set_source);
TRIGGERD_CHECK_PROTOTYPE(context_set_target, mnt_context_set_target);
TRIGGERD_CHECK_PROTOTYPE(context_set_fstype, mnt_context_set_fstype);
TRIGGERD_CHECK_PROTOTYPE(context_set_options, mnt_context_set_options);
TRIGGERD_CHECK_PROTOTYPE(context_disable_helpers, mnt_context_disable_helpers);
TRIGGERD_CHECK_PROTOTYPE(context_disable_canonicalize, mnt_context_disable_canonicalize);
TRIGGERD_CHECK_PROTOTYPE(context_enable_sloppy, mnt_context_enable_sloppy);
TRIGGERD_CHECK_PROTOTYPE(context_enable_rwonly_mount, mnt_context_enable_rwonly_mount);
TRIGGERD_CHECK_PROTOTYPE(context_enable_lazy, mnt_context_enable_lazy);
TRIGGERD_CHECK_PROTOTYPE(context_enable_force, mnt_context_enable_force);
TRIGGERD_CHECK_PROTOTYPE(context_mount, mnt_context_mount);
TRIGGERD_CHECK_PROTOTYPE(context_umount, mnt_context_umount);
TRIGGERD_CHECK_PROTOTYPE(context_get_excode, mnt_context_get_excode);
TRIGGERD_CHECK_PROTOTYPE(context_syscall_called, mnt_context_syscall_called);
TRIGGERD_CHECK_PROTOTYPE(context_get_syscall_errno, mnt_context_get_syscall_errno);
TRIGGERD_CHECK_PROTOTYPE(get_library_version, mnt_get_library_version);
#undef TRIGGERD_CHECK_PROTOTYPE
#endif
#endif

namespace triggerd {

namespace {

std::once_flag load_once;
LibmountLibrary library;
const LibmountLibrary* loaded = nullptr;
std::string load_error;

// dlsym into a typed function pointer; records the first missing symbol.
template <typename Fn>
bool Resolve(void* handle, const char* symbol, Fn* out) {
  void* address = dlsym(handle, symbol);
  if (address == nullptr) {
    *out = nullptr;
    if (load_error.empty()) {
      const char* text = dlerror();
      load_error = text != nullptr ? text : std::string(symbol) + " not found in libmount.so.1";
    }
    return false;
  }
  *out = reinterpret_cast<Fn>(address);
  return true;
}

void Load() {
  // RTLD_LOCAL: the symbols serve only this table; RTLD_NOW: a missing symbol fails here, not
  // later in a worker thread.
  void* handle = dlopen("libmount.so.1", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* text = dlerror();
    load_error = text != nullptr ? text : "dlopen(libmount.so.1) failed";
    return;
  }
  bool ok = true;
  ok &= Resolve(handle, "mnt_new_context", &library.new_context);
  ok &= Resolve(handle, "mnt_free_context", &library.free_context);
  ok &= Resolve(handle, "mnt_context_set_source", &library.context_set_source);
  ok &= Resolve(handle, "mnt_context_set_target", &library.context_set_target);
  ok &= Resolve(handle, "mnt_context_set_fstype", &library.context_set_fstype);
  ok &= Resolve(handle, "mnt_context_set_options", &library.context_set_options);
  ok &= Resolve(handle, "mnt_context_disable_helpers", &library.context_disable_helpers);
  ok &= Resolve(handle, "mnt_context_disable_canonicalize",
                &library.context_disable_canonicalize);
  ok &= Resolve(handle, "mnt_context_enable_sloppy", &library.context_enable_sloppy);
  ok &= Resolve(handle, "mnt_context_enable_rwonly_mount", &library.context_enable_rwonly_mount);
  ok &= Resolve(handle, "mnt_context_enable_lazy", &library.context_enable_lazy);
  ok &= Resolve(handle, "mnt_context_enable_force", &library.context_enable_force);
  ok &= Resolve(handle, "mnt_context_mount", &library.context_mount);
  ok &= Resolve(handle, "mnt_context_umount", &library.context_umount);
  ok &= Resolve(handle, "mnt_context_get_excode", &library.context_get_excode);
  ok &= Resolve(handle, "mnt_context_syscall_called", &library.context_syscall_called);
  ok &= Resolve(handle, "mnt_context_get_syscall_errno", &library.context_get_syscall_errno);
  ok &= Resolve(handle, "mnt_get_library_version", &library.get_library_version);
  if (!ok) {
    // Keep the handle: unloading a library whose symbols we looked at buys nothing.
    return;
  }
  loaded = &library;
}

}  // namespace

const LibmountLibrary* LoadLibmountLibrary(std::string* error) {
  std::call_once(load_once, Load);
  if (loaded == nullptr && error != nullptr) *error = load_error;
  return loaded;
}

}  // namespace triggerd
