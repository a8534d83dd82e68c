// libmount loaded at run time. Debian always ships libmount.so.1 (libmount1, which mount(8)
// itself links) but not always its headers (libmount-dev), so the few prototypes we call are
// declared here and resolved with dlopen/dlsym, as native/blkid does for libblkid. Where the
// headers are installed, libmount_library.cc checks these declarations against them at compile
// time.
#pragma once

#include <cstddef>
#include <string>

namespace triggerd {

// Opaque libmount handle, as `struct libmnt_context` in <libmount/libmount.h>.
struct LibmntContextStruct;
using LibmntContext = LibmntContextStruct*;

// mount(8)'s exit codes, from <libmount/libmount.h> (MNT_EX_*).
constexpr int kMntExSuccess = 0;
constexpr int kMntExSyserr = 2;
constexpr int kMntExFail = 32;

struct LibmountLibrary {
  LibmntContext (*new_context)();
  void (*free_context)(LibmntContext);
  int (*context_set_source)(LibmntContext, const char*);
  int (*context_set_target)(LibmntContext, const char*);
  int (*context_set_fstype)(LibmntContext, const char*);
  int (*context_set_options)(LibmntContext, const char*);
  int (*context_disable_helpers)(LibmntContext, int);
  int (*context_disable_canonicalize)(LibmntContext, int);
  int (*context_enable_sloppy)(LibmntContext, int);
  int (*context_enable_rwonly_mount)(LibmntContext, int);
  int (*context_enable_lazy)(LibmntContext, int);
  int (*context_enable_force)(LibmntContext, int);
  int (*context_mount)(LibmntContext);
  int (*context_umount)(LibmntContext);
  int (*context_get_excode)(LibmntContext, int rc, char* buf, size_t bufsz);
  int (*context_syscall_called)(LibmntContext);
  int (*context_get_syscall_errno)(LibmntContext);
  int (*get_library_version)(const char** version);
};

// dlopen("libmount.so.1") once per process and resolve every symbol. Returns null and sets
// `error` (dlerror's text) when the library or a symbol is missing (mnt_context_get_excode and
// mnt_context_enable_rwonly_mount need libmount >= 2.30). The handle is process-wide on purpose:
// dlopen is reference counted per process, and the table is immutable once loaded, so worker
// threads and Node environments may share it.
const LibmountLibrary* LoadLibmountLibrary(std::string* error);

}  // namespace triggerd
