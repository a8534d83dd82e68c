// The /dev/autofs control device (misc 10:235): every command takes a struct autofs_dev_ioctl
// and addresses one autofs mount through an "ioctl fd" that OPENMOUNT hands out by path and
// device id. Plain functions returning 0 or a positive errno; nothing here touches JavaScript,
// so the expire thread uses them too.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace triggerd {

// open("/dev/autofs") and check the interface version (1.x); returns the fd or -errno.
int OpenAutofsControl();

// OPENMOUNT: an fd on the autofs mount at `path` whose st_dev is `devid`; returns it or -errno.
// The fd pins the mount (an open mount is never idle): close it right after use.
int OpenAutofsMount(int control_fd, const std::string& path, dev_t devid);
void CloseAutofsMount(int control_fd, int ioctl_fd);

int AutofsProtocol(int control_fd, int ioctl_fd, uint32_t* version, uint32_t* sub_version);
int AutofsReady(int control_fd, int ioctl_fd, uint32_t token);
// `status` must be 0 or a negative errno: a positive one leaves the waiter hung in the kernel.
int AutofsFail(int control_fd, int ioctl_fd, uint32_t token, int32_t status);
int AutofsSetTimeout(int control_fd, int ioctl_fd, uint64_t seconds);
int AutofsCatatonic(int control_fd, int ioctl_fd);
// Blocks until the daemon answers the expire packet it causes (or with EAGAIN at once when
// nothing is idle): call it from a thread other than the one that reads the pipe.
int AutofsExpire(int control_fd, int ioctl_fd, uint32_t how);
// ASKUMOUNT: *may_umount = 1 when nothing below the mount is in use.
int AutofsAskUmount(int control_fd, int ioctl_fd, uint32_t* may_umount);

}  // namespace triggerd
