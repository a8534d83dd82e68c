// Default locations. Root gets the system ones; an ordinary user gets a private runtime directory
// (as systemd --user does with $XDG_RUNTIME_DIR), so both can run side by side.
import path = require('node:path');

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

export function defaultRuntimeDir(): string {
  if (isRoot()) return '/run/triggerd';
  const xdg = process.env.XDG_RUNTIME_DIR;
  return xdg !== undefined && xdg !== ''
    ? path.join(xdg, 'triggerd')
    : `/tmp/triggerd-${process.getuid?.() ?? 'user'}`;
}

export function defaultControlSocket(): string {
  return path.join(defaultRuntimeDir(), 'control.sock');
}
