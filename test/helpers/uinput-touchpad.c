// Test-only helper (compiled by test/integration/devnode-native.test.ts with cc): creates a
// virtual touchpad through /dev/uinput — x 0..1000 and y 0..600 at 10 units/mm, so 100 x 60 mm —
// prints its input sysname ("input12") and keeps it until stdin closes, then destroys it.
#include <fcntl.h>
#include <linux/uinput.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int fail(const char *what) {
  perror(what);
  return 1;
}

int main(void) {
  int fd = open("/dev/uinput", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return fail("open /dev/uinput");
  // Touchpad-like: BTN_TOOL_FINGER and BTN_TOUCH with absolute X/Y, no pen, not direct.
  int keys[] = {BTN_LEFT, BTN_TOOL_FINGER, BTN_TOUCH};
  if (ioctl(fd, UI_SET_EVBIT, EV_KEY) < 0) return fail("UI_SET_EVBIT EV_KEY");
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    if (ioctl(fd, UI_SET_KEYBIT, keys[i]) < 0) return fail("UI_SET_KEYBIT");
  if (ioctl(fd, UI_SET_EVBIT, EV_ABS) < 0) return fail("UI_SET_EVBIT EV_ABS");
  struct uinput_abs_setup axes[2];
  memset(axes, 0, sizeof(axes));
  axes[0].code = ABS_X;
  axes[0].absinfo.maximum = 1000;
  axes[0].absinfo.resolution = 10;
  axes[1].code = ABS_Y;
  axes[1].absinfo.maximum = 600;
  axes[1].absinfo.resolution = 10;
  for (int i = 0; i < 2; i++) {
    if (ioctl(fd, UI_SET_ABSBIT, axes[i].code) < 0) return fail("UI_SET_ABSBIT");
    if (ioctl(fd, UI_ABS_SETUP, &axes[i]) < 0) return fail("UI_ABS_SETUP");
  }
  struct uinput_setup setup;
  memset(&setup, 0, sizeof(setup));
  setup.id.bustype = BUS_VIRTUAL;
  setup.id.vendor = 0x1234;
  setup.id.product = 0x5678;
  strncpy(setup.name, "triggerd test touchpad", UINPUT_MAX_NAME_SIZE - 1);
  if (ioctl(fd, UI_DEV_SETUP, &setup) < 0) return fail("UI_DEV_SETUP");
  if (ioctl(fd, UI_DEV_CREATE) < 0) return fail("UI_DEV_CREATE");
  char sysname[64] = {0};
  if (ioctl(fd, UI_GET_SYSNAME(sizeof(sysname) - 1), sysname) < 0) {
    ioctl(fd, UI_DEV_DESTROY);
    return fail("UI_GET_SYSNAME");
  }
  printf("%s\n", sysname);
  fflush(stdout);
  char buf[64];
  while (read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
  }
  ioctl(fd, UI_DEV_DESTROY);
  close(fd);
  return 0;
}
