// libblkid loaded at run time. Debian always ships libblkid.so.1 (libblkid1) but not always its
// headers (libblkid-dev), so the few prototypes we call are declared here and resolved with
// dlopen/dlsym instead of linking against -lblkid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace triggerd {

// Opaque libblkid handles and types, as in <blkid/blkid.h> (ABI-stable since libblkid.so.1).
struct BlkidProbeStruct;
using BlkidProbe = BlkidProbeStruct*;
using BlkidLoff = int64_t;

// Flag values from <blkid/blkid.h>.
constexpr int kBlkidSublksLabel = 1 << 1;
constexpr int kBlkidSublksUuid = 1 << 3;
constexpr int kBlkidSublksType = 1 << 5;
constexpr int kBlkidSublksSectype = 1 << 6;
constexpr int kBlkidSublksUsage = 1 << 7;
constexpr int kBlkidSublksVersion = 1 << 8;
constexpr int kBlkidSublksFsinfo = 1 << 11;
constexpr int kBlkidPartsEntryDetails = 1 << 2;
constexpr int kBlkidFltrNotin = 1;
constexpr int kBlkidUsageRaid = 1 << 2;

struct BlkidLibrary {
  BlkidProbe (*new_probe)();
  void (*free_probe)(BlkidProbe);
  int (*probe_set_device)(BlkidProbe, int fd, BlkidLoff offset, BlkidLoff size);
  int (*probe_enable_superblocks)(BlkidProbe, int enable);
  int (*probe_set_superblocks_flags)(BlkidProbe, int flags);
  int (*probe_filter_superblocks_usage)(BlkidProbe, int flag, int usage);
  int (*probe_enable_partitions)(BlkidProbe, int enable);
  int (*probe_set_partitions_flags)(BlkidProbe, int flags);
  int (*do_safeprobe)(BlkidProbe);
  int (*do_fullprobe)(BlkidProbe);
  int (*probe_numof_values)(BlkidProbe);
  int (*probe_get_value)(BlkidProbe, int num, const char** name, const char** data, size_t* len);
  int (*probe_lookup_value)(BlkidProbe, const char* name, const char** data, size_t* len);
  BlkidLoff (*probe_get_size)(BlkidProbe);
  int (*probe_is_wholedisk)(BlkidProbe);
  // Optional: libblkid >= 2.37 only; null when the library is older.
  int (*probe_set_hint)(BlkidProbe, const char* name, uint64_t value);
  int (*get_library_version)(const char** version, const char** date);
};

// dlopen("libblkid.so.1") once per process and resolve every symbol. Returns null and sets
// `error` (dlerror's text) when the library or a required symbol is missing. The handle is
// process-wide on purpose: dlopen is reference counted per process, not per Node environment,
// and the function table is immutable once loaded, so worker threads may share it.
const BlkidLibrary* LoadBlkidLibrary(std::string* error);

}  // namespace triggerd
