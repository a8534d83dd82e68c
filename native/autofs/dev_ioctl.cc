#include "dev_ioctl.h"

#include <fcntl.h>
#include <linux/ioctl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace triggerd {

namespace {

// <linux/auto_dev-ioctl.h> does not compile as C++ (structs declared inside an anonymous union),
// so its layout is restated here and checked: ver_major u32 @0, ver_minor @4, size @8,
// ioctlfd s32 @12, an 8-byte argument union @16, path[] @24.
struct autofs_dev_ioctl {
  uint32_t ver_major;
  uint32_t ver_minor;
  uint32_t size;
  int32_t ioctlfd;
  union {
    struct { uint32_t version; } protover;
    struct { uint32_t sub_version; } protosubver;
    struct { uint32_t devid; } openmount;
    struct { uint32_t token; } ready;
    struct { uint32_t token; int32_t status; } fail;
    struct { uint64_t timeout; } timeout;
    struct { uint32_t how; } expire;
    struct { uint32_t may_umount; } askumount;
  };
  char path[];
};
static_assert(sizeof(autofs_dev_ioctl) == 24, "struct autofs_dev_ioctl is 24 bytes");
static_assert(offsetof(autofs_dev_ioctl, ioctlfd) == 12, "ioctlfd at 12");
static_assert(offsetof(autofs_dev_ioctl, path) == 24, "path at 24");

constexpr uint32_t AUTOFS_DEV_IOCTL_VERSION_MAJOR = 1;
constexpr uint32_t AUTOFS_DEV_IOCTL_VERSION_MINOR = 1;

constexpr unsigned long DevIoctl(unsigned nr) {
  return _IOWR(0x93, nr, autofs_dev_ioctl);
}
constexpr unsigned long AUTOFS_DEV_IOCTL_VERSION = DevIoctl(0x71);
constexpr unsigned long AUTOFS_DEV_IOCTL_PROTOVER = DevIoctl(0x72);
constexpr unsigned long AUTOFS_DEV_IOCTL_PROTOSUBVER = DevIoctl(0x73);
constexpr unsigned long AUTOFS_DEV_IOCTL_OPENMOUNT = DevIoctl(0x74);
constexpr unsigned long AUTOFS_DEV_IOCTL_CLOSEMOUNT = DevIoctl(0x75);
constexpr unsigned long AUTOFS_DEV_IOCTL_READY = DevIoctl(0x76);
constexpr unsigned long AUTOFS_DEV_IOCTL_FAIL = DevIoctl(0x77);
constexpr unsigned long AUTOFS_DEV_IOCTL_CATATONIC = DevIoctl(0x79);
constexpr unsigned long AUTOFS_DEV_IOCTL_TIMEOUT = DevIoctl(0x7a);
constexpr unsigned long AUTOFS_DEV_IOCTL_EXPIRE = DevIoctl(0x7c);
constexpr unsigned long AUTOFS_DEV_IOCTL_ASKUMOUNT = DevIoctl(0x7d);
static_assert(AUTOFS_DEV_IOCTL_VERSION == 0xc0189371UL, "VERSION ioctl number");
static_assert(AUTOFS_DEV_IOCTL_EXPIRE == 0xc018937cUL, "EXPIRE ioctl number");

void InitParam(autofs_dev_ioctl* param) {
  std::memset(param, 0, sizeof(*param));
  param->ver_major = AUTOFS_DEV_IOCTL_VERSION_MAJOR;
  param->ver_minor = AUTOFS_DEV_IOCTL_VERSION_MINOR;
  param->size = sizeof(*param);
  param->ioctlfd = -1;
}

int Call(int control_fd, unsigned long request, autofs_dev_ioctl* param) {
  for (;;) {
    if (ioctl(control_fd, request, param) == 0) return 0;
    if (errno != EINTR) return errno;
  }
}

}  // namespace

int OpenAutofsControl() {
  int fd = open("/dev/autofs", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  autofs_dev_ioctl param;
  InitParam(&param);
  int err = Call(fd, AUTOFS_DEV_IOCTL_VERSION, &param);
  if (err == 0 && param.ver_major != AUTOFS_DEV_IOCTL_VERSION_MAJOR) err = EPROTONOSUPPORT;
  if (err != 0) {
    close(fd);
    return -err;
  }
  return fd;
}

int OpenAutofsMount(int control_fd, const std::string& path, dev_t devid) {
  size_t size = sizeof(autofs_dev_ioctl) + path.size() + 1;
  // The struct ends in a flexible array: one allocation holds both.
  std::unique_ptr<uint8_t[]> storage(new uint8_t[size]());
  auto* param = reinterpret_cast<autofs_dev_ioctl*>(storage.get());
  InitParam(param);
  param->size = static_cast<uint32_t>(size);
  param->openmount.devid = static_cast<uint32_t>(devid);
  std::memcpy(param->path, path.c_str(), path.size() + 1);
  int err = Call(control_fd, AUTOFS_DEV_IOCTL_OPENMOUNT, param);
  if (err != 0) return -err;
  return param->ioctlfd;
}

void CloseAutofsMount(int control_fd, int ioctl_fd) {
  if (ioctl_fd < 0) return;
  autofs_dev_ioctl param;
  InitParam(&param);
  param.ioctlfd = ioctl_fd;
  // CLOSEMOUNT is close(ioctlfd) done by the kernel; fall back to close() if it is refused.
  if (Call(control_fd, AUTOFS_DEV_IOCTL_CLOSEMOUNT, &param) != 0) close(ioctl_fd);
}

int AutofsProtocol(int control_fd, int ioctl_fd, uint32_t* version, uint32_t* sub_version) {
  autofs_dev_ioctl param;
  InitParam(&param);
  param.ioctlfd = ioctl_fd;
  int err = Call(control_fd, AUTOFS_DEV_IOCTL_PROTOVER, &param);
  if (err != 0) return err;
  *version = param.protover.version;
  InitParam(&param);
  param.ioctlfd = ioctl_fd;
  err = Call(control_fd, AUTOFS_DEV_IOCTL_PROTOSUBVER, &param);
  if (err != 0) return err;
  *sub_version = param.protosubver.sub_version;
  return 0;
}

int AutofsReady(int control_fd, int ioctl_fd, uint32_t token) {
  autofs_dev_ioctl param;
  InitParam(&param);
  param.ioctlfd = ioctl_fd;
  param.ready.token = token;
  return Call(control_fd, AUTOFS_DEV_IOCTL_READY, &param);
}

int AutofsFail(int control_fd, int ioctl_fd, uint32_t token, int32_t status) {
  if (status > 0) return EINVAL;
  autofs_dev_ioctl param;
  InitParam(&param);
  param.ioctlfd = ioctl_fd;
  param.fail.token = token;
  param.fail.status = status;
  return Call(control_fd, AUTOFS_DEV_IOCTL_FAIL, &param);
}

int AutofsSetTimeout(int control_fd, int ioctl_fd, uint64_t seconds) {
  autofs_dev_ioctl param;
  InitParam(&param);
  param.ioctlfd = ioctl_fd;
  param.timeout.timeout = seconds;
  return Call(control_fd, AUTOFS_DEV_IOCTL_TIMEOUT, &param);
}

int AutofsCatatonic(int control_fd, int ioctl_fd) {
  autofs_dev_ioctl param;
  InitParam(&param);
  param.ioctlfd = ioctl_fd;
  return Call(control_fd, AUTOFS_DEV_IOCTL_CATATONIC, &param);
}

int AutofsExpire(int control_fd, int ioctl_fd, uint32_t how) {
  autofs_dev_ioctl param;
  InitParam(&param);
  param.ioctlfd = ioctl_fd;
  param.expire.how = how;
  return Call(control_fd, AUTOFS_DEV_IOCTL_EXPIRE, &param);
}

int AutofsAskUmount(int control_fd, int ioctl_fd, uint32_t* may_umount) {
  autofs_dev_ioctl param;
  InitParam(&param);
  param.ioctlfd = ioctl_fd;
  int err = Call(control_fd, AUTOFS_DEV_IOCTL_ASKUMOUNT, &param);
  if (err == 0) *may_umount = param.askumount.may_umount;
  return err;
}

}  // namespace triggerd
