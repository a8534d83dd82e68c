// The event bits inotify(7) and fanotify(7) have in common: both are views of the kernel's
// fsnotify FS_* bits (include/linux/fsnotify_backend.h), so IN_ACCESS == FAN_ACCESS and so on.

/** The fsnotify event bits shared by IN (./inotify-addon) and FAN (./fanotify-addon). */
export const FSNOTIFY_EVENTS = {
  ACCESS: 0x1,
  MODIFY: 0x2,
  ATTRIB: 0x4,
  CLOSE_WRITE: 0x8,
  CLOSE_NOWRITE: 0x10,
  OPEN: 0x20,
  MOVED_FROM: 0x40,
  MOVED_TO: 0x80,
  CREATE: 0x100,
  DELETE: 0x200,
  DELETE_SELF: 0x400,
  MOVE_SELF: 0x800,
} as const;
