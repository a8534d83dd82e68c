// A fake NativeDevnode for pure tests: xattrs kept in memory per path (the file must exist on
// disk, as for the kernel), scripted EVIOCGABS answers per device node. It keeps the real addon's
// observable rules, checked by the contract suite in test/integration/devnode-native.test.ts:
// TypeErrors for bad arguments, ENOENT for a missing path, ENODATA for an unset attribute,
// ENOTSUP for a name without a namespace, ENOTTY for a node that is not an evdev device.
import * as fs from 'node:fs';
import type { NativeDevnode, NativeSystemError } from '../../src/native/devnode-addon';

const ERRNO: Record<string, number> = { ENOENT: 2, ENOTTY: 25, ENODATA: 61, ENOTSUP: 95, EINVAL: 22 };

export function fakeDevnodeError(code: string, syscall: string, path: string): NativeSystemError {
  const error = new Error(`${code}: fake error, ${syscall}`) as NativeSystemError;
  error.code = code;
  error.errno = -(ERRNO[code] ?? 1);
  error.syscall = syscall;
  error.path = path;
  return error;
}

function checkString(value: unknown, name: string): string {
  if (typeof value !== 'string') {
    throw Object.assign(new TypeError(`The "${name}" argument must be a string`), {
      code: 'ERR_INVALID_ARG_TYPE',
    });
  }
  if (value === '' || value.includes('\0')) {
    throw Object.assign(new TypeError(`The "${name}" argument must be a non-empty string without NUL`), {
      code: 'ERR_INVALID_ARG_VALUE',
    });
  }
  return value;
}

export class FakeDevnode implements NativeDevnode {
  readonly xattrs = new Map<string, Map<string, Buffer>>();
  /** devnode → axis → raw struct input_absinfo. */
  readonly absinfo = new Map<string, Map<number, Buffer>>();

  setXattr(path: string, name: string, value: Buffer): void {
    checkString(path, 'path');
    checkString(name, 'name');
    if (!Buffer.isBuffer(value)) {
      throw Object.assign(new TypeError('The "value" argument must be a Buffer'), {
        code: 'ERR_INVALID_ARG_TYPE',
      });
    }
    if (!fs.existsSync(path)) throw fakeDevnodeError('ENOENT', 'setxattr', path);
    if (!name.includes('.')) throw fakeDevnodeError('ENOTSUP', 'setxattr', path);
    let attrs = this.xattrs.get(path);
    if (attrs === undefined) this.xattrs.set(path, (attrs = new Map()));
    attrs.set(name, Buffer.from(value));
  }

  getXattr(path: string, name: string): Buffer {
    checkString(path, 'path');
    checkString(name, 'name');
    if (!fs.existsSync(path)) throw fakeDevnodeError('ENOENT', 'getxattr', path);
    const value = this.xattrs.get(path)?.get(name);
    if (value === undefined) throw fakeDevnodeError('ENODATA', 'getxattr', path);
    return Buffer.from(value);
  }

  readAbsInfo(devnode: string, axis: number): Buffer {
    checkString(devnode, 'devnode');
    if (typeof axis !== 'number' || !Number.isInteger(axis) || axis < 0 || axis > 0x3f) {
      throw Object.assign(new TypeError('The "axis" argument must be an integer in 0..63'), {
        code: typeof axis === 'number' ? 'ERR_INVALID_ARG_VALUE' : 'ERR_INVALID_ARG_TYPE',
      });
    }
    const axes = this.absinfo.get(devnode);
    if (axes === undefined) {
      if (!fs.existsSync(devnode)) throw fakeDevnodeError('ENOENT', 'open', devnode);
      throw fakeDevnodeError('ENOTTY', 'ioctl', devnode);
    }
    const info = axes.get(axis);
    if (info === undefined) throw fakeDevnodeError('EINVAL', 'ioctl', devnode);
    return Buffer.from(info);
  }
}
