#include "probe_worker.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>
#include <utility>

#include "../netlink/system_error.h"

namespace triggerd {

namespace {

// libblkid's values are short strings (labels, UUIDs, type names); this bound only guards the copy
// against a broken library reporting a nonsensical length.
constexpr size_t kMaxValueBytes = 64 * 1024;
// A probe reports a few dozen values at most (superblock + partition entry); same reasoning.
constexpr int kMaxValues = 1024;

// udev probes small whole disks (floppies, <= 1440 KiB) for a partition table first and skips
// the superblock probe when one is found: a tiny FAT image must not be mistaken for a file system.
constexpr BlkidLoff kSmallDiskBytes = 1024 * 1440;

class ProbeGuard {
 public:
  ProbeGuard(const BlkidLibrary* library, BlkidProbe probe) : library_(library), probe_(probe) {}
  ~ProbeGuard() {
    if (probe_ != nullptr) library_->free_probe(probe_);
  }
  ProbeGuard(const ProbeGuard&) = delete;
  ProbeGuard& operator=(const ProbeGuard&) = delete;

 private:
  const BlkidLibrary* library_;
  BlkidProbe probe_;
};

// libblkid often fails without setting errno; then the fallback says what kind of failure it was.
int ErrnoOr(int fallback) { return errno != 0 ? errno : fallback; }

// A block device's page cache is dropped when its last opener closes it, so every probe starts
// cold and libblkid's ~50 small reads each wait for the driver in turn (through a loop device:
// a kworker round trip per page). Asking for the pages libblkid's probers look at in one go
// lets the driver fetch them together: on 4 MiB ext4 loop devices the probe's CPU across the
// whole system went from ~0.70 to ~0.50 ms. Only a hint: a page not asked for is read as before.
void PrefetchProbeAreas(int fd, off_t size, bool raid) {
  constexpr off_t kPage = 4096;
  std::vector<off_t> pages;
  // From the start: the superblocks of most file systems, partition tables and LVM/md 1.1/1.2
  // lie in the first 64 KiB; a few probers look at power-of-two offsets up to 2 MiB.
  for (off_t o = 0; o < 64 * 1024; o += kPage) pages.push_back(o);
  for (off_t o = 64 * 1024; o <= 2 * 1024 * 1024; o *= 2) pages.push_back(o);
  // From the end: GPT's backup header, md 1.0, DDF and most firmware RAID labels sit in the last
  // 32 KiB; md 0.90 64 KiB below the last 64 KiB boundary.
  for (off_t o = kPage; o <= 32 * 1024; o += kPage) pages.push_back(size - o);
  pages.push_back((size & ~static_cast<off_t>(64 * 1024 - 1)) - 64 * 1024);
  if (raid) {
    // Firmware RAID labels found by sector number from the end (Promise, HighPoint, ...).
    static const off_t kSectorsFromEnd[] = {16, 63, 255, 256, 399, 591, 675, 735, 911, 951, 974, 991, 3087};
    for (off_t sectors : kSectorsFromEnd) pages.push_back(size - sectors * 512);
  }
  std::vector<std::pair<off_t, off_t>> ranges;
  for (off_t& p : pages) p &= ~(kPage - 1);
  std::sort(pages.begin(), pages.end());
  for (off_t p : pages) {
    if (p < 0 || p >= size) continue;
    if (!ranges.empty() && p <= ranges.back().second) {
      ranges.back().second = std::max(ranges.back().second, p + kPage);
    } else {
      ranges.emplace_back(p, p + kPage);
    }
  }
  for (const auto& r : ranges) posix_fadvise(fd, r.first, r.second - r.first, POSIX_FADV_WILLNEED);
}

}  // namespace

ProbeWorker::ProbeWorker(Napi::Env env, const BlkidLibrary* library, ProbeRequest request)
    : Napi::AsyncWorker(env, "triggerd.blkidProbe"),
      deferred_(Napi::Promise::Deferred::New(env)),
      library_(library),
      request_(std::move(request)) {}

void ProbeWorker::Fail(int err, const char* syscall) {
  err_ = err;
  syscall_ = syscall;
}

void ProbeWorker::Execute() {
  // The same flags udev's sd_device_open() uses: O_NONBLOCK so a tape or a CD tray does not
  // block the open itself.
  int fd = open(request_.path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    Fail(errno, "open");
    return;
  }
  Probe(fd);
  close(fd);
}

bool ProbeWorker::Probe(int fd) {
  const BlkidLibrary& lib = *library_;
  errno = 0;
  BlkidProbe probe = lib.new_probe();
  if (probe == nullptr) {
    Fail(ErrnoOr(ENOMEM), "blkid_new_probe");
    return false;
  }
  ProbeGuard guard(library_, probe);

  // udev's flag set; FSINFO adds FSSIZE/FSLASTBLOCK/FSBLOCKSIZE where libblkid knows them.
  lib.probe_set_superblocks_flags(probe, kBlkidSublksLabel | kBlkidSublksUuid | kBlkidSublksType |
                                             kBlkidSublksSectype | kBlkidSublksFsinfo |
                                             kBlkidSublksUsage | kBlkidSublksVersion);
  if (request_.noraid) lib.probe_filter_superblocks_usage(probe, kBlkidFltrNotin, kBlkidUsageRaid);
  if (request_.has_hint) {
    errno = 0;
    if (lib.probe_set_hint == nullptr) {
      Fail(ENOSYS, "blkid_probe_set_hint");
      return false;
    }
    if (lib.probe_set_hint(probe, request_.hint.c_str(), 0) < 0) {
      Fail(ErrnoOr(EINVAL), "blkid_probe_set_hint");
      return false;
    }
  }

  errno = 0;
  if (lib.probe_set_device(probe, fd, request_.offset, 0) < 0) {
    Fail(ErrnoOr(ENOMEM), "blkid_probe_set_device");
    return false;
  }

  struct stat st;
  if (fstat(fd, &st) != 0) {
    Fail(errno, "fstat");
    return false;
  }
  if (S_ISBLK(st.st_mode)) PrefetchProbeAreas(fd, static_cast<off_t>(lib.probe_get_size(probe)), !request_.noraid);

  lib.probe_enable_partitions(probe, 1);
  bool done = false;
  if (!S_ISCHR(st.st_mode) && lib.probe_get_size(probe) <= kSmallDiskBytes &&
      lib.probe_is_wholedisk(probe)) {
    lib.probe_enable_superblocks(probe, 0);
    errno = 0;
    int rc = lib.do_fullprobe(probe);
    if (rc < 0) {
      Fail(ErrnoOr(EIO), "blkid_do_fullprobe");
      return false;
    }
    if (lib.probe_lookup_value(probe, "PTTYPE", nullptr, nullptr) == 0) {
      status_ = ProbeStatus::kFound;
      done = true;
    }
  }
  if (!done) {
    lib.probe_set_partitions_flags(probe, kBlkidPartsEntryDetails);
    lib.probe_enable_superblocks(probe, 1);
    errno = 0;
    int rc = lib.do_safeprobe(probe);
    if (rc == -2) {
      // More than one superblock matched: a result, not an I/O failure; TypeScript decides.
      status_ = ProbeStatus::kAmbivalent;
      return true;
    }
    if (rc < 0) {
      Fail(ErrnoOr(EIO), "blkid_do_safeprobe");
      return false;
    }
    status_ = rc == 1 ? ProbeStatus::kNothing : ProbeStatus::kFound;
  }

  errno = 0;
  int count = lib.probe_numof_values(probe);
  if (count < 0) {
    Fail(ErrnoOr(ENOMEM), "blkid_probe_numof_values");
    return false;
  }
  if (count > kMaxValues) count = kMaxValues;
  values_.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; i++) {
    const char* name = nullptr;
    const char* data = nullptr;
    size_t len = 0;
    if (lib.probe_get_value(probe, i, &name, &data, &len) < 0 || name == nullptr) continue;
    ProbeValue value;
    value.name = name;
    if (data != nullptr) {
      size_t bytes = len < kMaxValueBytes ? len : kMaxValueBytes;
      const uint8_t* begin = reinterpret_cast<const uint8_t*>(data);
      value.data.assign(begin, begin + bytes);
    }
    values_.push_back(std::move(value));
  }
  return true;
}

void ProbeWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  if (err_ != 0) {
    Napi::Error error = MakeSystemError(env, err_, syscall_);
    error.Set("path", Napi::String::New(env, request_.path));
    deferred_.Reject(error.Value());
    return;
  }
  Napi::Object result = Napi::Object::New(env);
  const char* status = status_ == ProbeStatus::kFound     ? "found"
                       : status_ == ProbeStatus::kNothing ? "nothing"
                                                          : "ambivalent";
  result.Set("status", Napi::String::New(env, status));
  Napi::Array values = Napi::Array::New(env, values_.size());
  for (size_t i = 0; i < values_.size(); i++) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", Napi::String::New(env, values_[i].name));
    // A value without bytes still gets a (zero-length) Buffer, never one over a null pointer.
    static const uint8_t kEmpty[1] = {0};
    const std::vector<uint8_t>& data = values_[i].data;
    entry.Set("value", Napi::Buffer<uint8_t>::Copy(env, data.empty() ? kEmpty : data.data(),
                                                   data.size()));
    values.Set(static_cast<uint32_t>(i), entry);
  }
  result.Set("values", values);
  deferred_.Resolve(result);
}

void ProbeWorker::OnError(const Napi::Error& error) {
  // Execute() never calls SetError; this covers node-addon-api's own failures (none expected).
  deferred_.Reject(error.Value());
}

}  // namespace triggerd
