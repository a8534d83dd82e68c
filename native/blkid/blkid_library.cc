#include "blkid_library.h"

#include <dlfcn.h>

#include <mutex>

namespace triggerd {

namespace {

std::once_flag load_once;
BlkidLibrary library;
const BlkidLibrary* loaded = nullptr;
std::string load_error;

// dlsym into a typed function pointer; records the first missing symbol.
template <typename Fn>
bool Resolve(void* handle, const char* symbol, Fn* out, bool required) {
  void* address = dlsym(handle, symbol);
  if (address == nullptr) {
    *out = nullptr;
    if (required && load_error.empty()) {
      const char* text = dlerror();
      load_error = text != nullptr ? text : std::string(symbol) + " not found in libblkid.so.1";
    }
    return !required;
  }
  *out = reinterpret_cast<Fn>(address);
  return true;
}

void Load() {
  // RTLD_LOCAL: the symbols serve only this table; RTLD_NOW: a missing symbol fails here, not
  // later in a worker thread.
  void* handle = dlopen("libblkid.so.1", RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* text = dlerror();
    load_error = text != nullptr ? text : "dlopen(libblkid.so.1) failed";
    return;
  }
  bool ok = true;
  ok &= Resolve(handle, "blkid_new_probe", &library.new_probe, true);
  ok &= Resolve(handle, "blkid_free_probe", &library.free_probe, true);
  ok &= Resolve(handle, "blkid_probe_set_device", &library.probe_set_device, true);
  ok &= Resolve(handle, "blkid_probe_enable_superblocks", &library.probe_enable_superblocks, true);
  ok &= Resolve(handle, "blkid_probe_set_superblocks_flags", &library.probe_set_superblocks_flags,
                true);
  ok &= Resolve(handle, "blkid_probe_filter_superblocks_usage",
                &library.probe_filter_superblocks_usage, true);
  ok &= Resolve(handle, "blkid_probe_enable_partitions", &library.probe_enable_partitions, true);
  ok &= Resolve(handle, "blkid_probe_set_partitions_flags", &library.probe_set_partitions_flags,
                true);
  ok &= Resolve(handle, "blkid_do_safeprobe", &library.do_safeprobe, true);
  ok &= Resolve(handle, "blkid_do_fullprobe", &library.do_fullprobe, true);
  ok &= Resolve(handle, "blkid_probe_numof_values", &library.probe_numof_values, true);
  ok &= Resolve(handle, "blkid_probe_get_value", &library.probe_get_value, true);
  ok &= Resolve(handle, "blkid_probe_lookup_value", &library.probe_lookup_value, true);
  ok &= Resolve(handle, "blkid_probe_get_size", &library.probe_get_size, true);
  ok &= Resolve(handle, "blkid_probe_is_wholedisk", &library.probe_is_wholedisk, true);
  ok &= Resolve(handle, "blkid_probe_set_hint", &library.probe_set_hint, false);
  ok &= Resolve(handle, "blkid_get_library_version", &library.get_library_version, true);
  if (!ok) {
    // Keep the handle: unloading a library whose symbols we looked at buys nothing.
    return;
  }
  loaded = &library;
}

}  // namespace

const BlkidLibrary* LoadBlkidLibrary(std::string* error) {
  std::call_once(load_once, Load);
  if (loaded == nullptr && error != nullptr) *error = load_error;
  return loaded;
}

}  // namespace triggerd
