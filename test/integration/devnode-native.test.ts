// triggerd_devnode.node on the real kernel: one contract suite for it and the fake
// (test/helpers/fake-devnode), xattr round trips on ext4 and tmpfs temp files, a SECLABEL through
// the real addon (the kernel may refuse security.* without the LSM: reported, never thrown), abuse
// of every export, and EVIOCGABS on a uinput touchpad when uinput exists.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { inputId } from '../../src/devices/builtins/input-id';
import { builtinDeviceAt, createSysfsHost } from '../../src/devices/builtins/sysfs-host';
import { applyNodeLabels, planNodeLabels } from '../../src/devices/node-labels';
import { INPUT_ABSINFO_BYTES, loadNativeDevnode } from '../../src/native/devnode-addon';
import { FakeDevnode } from '../helpers/fake-devnode';
import { recordingLogger } from '../helpers/logger';

const uid = process.getuid?.() ?? -1;
const needsRoot = uid === 0 ? false : `needs root (running as uid ${uid})`;
const REPO_ROOT = path.resolve(__dirname, '..', '..', '..');

const native = loadNativeDevnode();
const tmpDirs: string[] = [];
after(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

function tempFile(base: string): string {
  const dir = fs.mkdtempSync(path.join(base, 'triggerd-xattr-'));
  tmpDirs.push(dir);
  const file = path.join(dir, 'node');
  fs.writeFileSync(file, '');
  return file;
}

function systemError(code: string, syscall: string, file?: string) {
  return (err: unknown): boolean => {
    const e = err as NodeJS.ErrnoException;
    assert.equal(e.code, code);
    assert.equal(e.syscall, syscall);
    assert.equal(typeof e.errno, 'number');
    assert.ok((e.errno ?? 0) < 0, 'errno is negative, as Node reports it');
    if (file !== undefined) assert.equal(e.path, file);
    return true;
  };
}

for (const [name, impl] of [
  ['real addon', native],
  ['fake', new FakeDevnode()],
] as const) {
  describe(`contract: ${name}`, () => {
    it('set then get gives the same bytes; unset is ENODATA; missing file is ENOENT', () => {
      const file = tempFile(os.tmpdir());
      impl.setXattr(file, 'user.contract', Buffer.from('v\0'));
      assert.deepEqual(impl.getXattr(file, 'user.contract'), Buffer.from('v\0'));
      assert.throws(() => impl.getXattr(file, 'user.unset'), systemError('ENODATA', 'getxattr', file));
      const missing = `${file}.missing`;
      assert.throws(
        () => impl.setXattr(missing, 'user.a', Buffer.from('x')),
        systemError('ENOENT', 'setxattr', missing),
      );
      assert.throws(
        () => impl.setXattr(file, 'plain', Buffer.from('x')),
        systemError('ENOTSUP', 'setxattr', file),
      );
    });

    it('readAbsInfo: ENOENT to open a missing node, ENOTTY on a non-evdev node, TypeErrors', () => {
      const file = tempFile(os.tmpdir());
      assert.throws(() => impl.readAbsInfo(`${file}.none`, 0), systemError('ENOENT', 'open', `${file}.none`));
      assert.throws(() => impl.readAbsInfo(file, 0), systemError('ENOTTY', 'ioctl', file));
      assert.throws(() => impl.readAbsInfo(file, 64), TypeError);
      assert.throws(() => impl.setXattr('', 'user.a', Buffer.alloc(0)), TypeError);
    });
  });
}

describe('xattr round trip', () => {
  const bases: [string, string | false][] = [
    ['os.tmpdir()', os.tmpdir()],
    ['tmpfs /dev/shm', fs.existsSync('/dev/shm') ? '/dev/shm' : false],
  ];
  for (const [name, base] of bases) {
    it(`user.* set and get back on ${name}`, { skip: base === false ? 'no /dev/shm' : false }, (t) => {
      const file = tempFile(base as string);
      const value = Buffer.from([0x00, 0x01, 0xff, 0x61, 0x00]);
      try {
        native.setXattr(file, 'user.triggerd.test', value);
      } catch (err) {
        // Older tmpfs (< 6.6) has no user.* xattrs.
        if ((err as NodeJS.ErrnoException).code === 'ENOTSUP')
          return t.skip('user xattrs not supported here');
        throw err;
      }
      assert.deepEqual(native.getXattr(file, 'user.triggerd.test'), value);
      // Replace, then an empty value.
      native.setXattr(file, 'user.triggerd.test', Buffer.from('second'));
      assert.equal(native.getXattr(file, 'user.triggerd.test').toString(), 'second');
      native.setXattr(file, 'user.triggerd.empty', Buffer.alloc(0));
      assert.equal(native.getXattr(file, 'user.triggerd.empty').length, 0);
      assert.throws(
        () => native.getXattr(file, 'user.triggerd.unset'),
        systemError('ENODATA', 'getxattr', file),
      );
    });
  }

  it('noFollow works on the link itself (lsetxattr: user.* is refused on symlinks)', () => {
    const file = tempFile(os.tmpdir());
    const link = `${file}.link`;
    fs.symlinkSync(file, link);
    native.setXattr(link, 'user.via-link', Buffer.from('x'));
    assert.equal(native.getXattr(file, 'user.via-link').toString(), 'x');
    assert.throws(
      () => native.setXattr(link, 'user.on-link', Buffer.from('x'), true),
      systemError('EPERM', 'lsetxattr', link),
    );
    assert.throws(
      () => native.getXattr(link, 'user.via-link', true),
      (err: unknown) => {
        const code = (err as NodeJS.ErrnoException).code;
        return code === 'ENODATA' || code === 'EPERM';
      },
    );
  });
});

describe('SECLABEL through the real addon', () => {
  it('security.selinux / SMACK64 on a temp file: set, or reported, never thrown', { skip: needsRoot }, () => {
    const file = tempFile(os.tmpdir());
    for (const module of ['selinux', 'smack']) {
      const rec = recordingLogger();
      const steps = planNodeLabels({
        seclabels: new Map([[module, 'system_u:object_r:triggerd_test_t:s0']]),
        sources: new Map([[module, { file: '/t.rules', line: 2 }]]),
        action: 'add',
        permissionsChanged: false,
        // Pretend the LSM is on, so the kernel is really asked.
        lsms: { selinux: true, smack: true },
      });
      const out = applyNodeLabels(file, '/devices/test', steps, { logger: rec.logger, xattr: native });
      assert.equal(out.length, 1);
      const outcome = out[0]!;
      if (outcome.status === 'set') {
        const attr = module === 'selinux' ? 'security.selinux' : 'security.SMACK64';
        assert.equal(
          native.getXattr(file, attr).toString('latin1').replace(/\0$/, ''),
          'system_u:object_r:triggerd_test_t:s0',
        );
      } else {
        assert.equal(outcome.status, 'failed');
        const line = rec.lines.find((l) => l.level === 50);
        assert.match(String(line?.msg), /^\/t\.rules:2: SECLABEL/);
        assert.equal(line?.devpath, '/devices/test');
      }
    }
  });

  it('a missing node is reported, not thrown', () => {
    const rec = recordingLogger();
    const steps = planNodeLabels({
      seclabels: new Map([['selinux', 'a_t']]),
      action: 'add',
      permissionsChanged: false,
      lsms: { selinux: true, smack: false },
    });
    const out = applyNodeLabels('/dev/triggerd-no-such-node', '/devices/x', steps, {
      logger: rec.logger,
      xattr: native,
    });
    assert.deepEqual(out, [{ module: 'selinux', status: 'failed', code: 'ENOENT' }]);
  });
});

describe('abuse of the native exports', () => {
  const file = tempFile(os.tmpdir());
  const typeError = (code: string) => (err: unknown) => {
    assert.ok(err instanceof TypeError, `TypeError expected, got ${String(err)}`);
    assert.equal((err as NodeJS.ErrnoException).code, code);
    return true;
  };
  // The wrapper's types forbid these; the addon must still refuse them cleanly.
  const raw = native as unknown as Record<string, (...args: unknown[]) => unknown>;

  it('setXattr: wrong types and values are TypeErrors', () => {
    const set = raw.setXattr!;
    assert.throws(() => set(), typeError('ERR_INVALID_ARG_TYPE'));
    assert.throws(() => set(42, 'user.a', Buffer.alloc(1)), typeError('ERR_INVALID_ARG_TYPE'));
    assert.throws(() => set(file, null, Buffer.alloc(1)), typeError('ERR_INVALID_ARG_TYPE'));
    assert.throws(() => set(file, 'user.a', 'not a buffer'), typeError('ERR_INVALID_ARG_TYPE'));
    assert.throws(() => set(file, 'user.a', Buffer.alloc(1), 'yes'), typeError('ERR_INVALID_ARG_TYPE'));
    assert.throws(() => set('', 'user.a', Buffer.alloc(1)), typeError('ERR_INVALID_ARG_VALUE'));
    assert.throws(() => set(`${file}\0x`, 'user.a', Buffer.alloc(1)), typeError('ERR_INVALID_ARG_VALUE'));
    assert.throws(() => set(file, 'user.a\0b', Buffer.alloc(1)), typeError('ERR_INVALID_ARG_VALUE'));
  });

  it('setXattr / getXattr: kernel refusals are system errors with syscall and path', () => {
    const missing = path.join(path.dirname(file), 'missing');
    assert.throws(
      () => native.setXattr(missing, 'user.a', Buffer.from('x')),
      systemError('ENOENT', 'setxattr', missing),
    );
    assert.throws(() => native.getXattr(missing, 'user.a'), systemError('ENOENT', 'getxattr', missing));
    // No namespace prefix (EOPNOTSUPP, which libuv, like Node, names ENOTSUP), an over-long name,
    // an over-large value.
    assert.throws(
      () => native.setXattr(file, 'nonamespace', Buffer.from('x')),
      systemError('ENOTSUP', 'setxattr', file),
    );
    assert.throws(
      () => native.setXattr(file, `user.${'n'.repeat(300)}`, Buffer.from('x')),
      systemError('ERANGE', 'setxattr', file),
    );
    assert.throws(
      () => native.setXattr(file, 'user.big', Buffer.alloc(70000)),
      systemError('E2BIG', 'setxattr', file),
    );
  });

  it('getXattr: bad arguments', () => {
    const get = raw.getXattr!;
    assert.throws(() => get(file), typeError('ERR_INVALID_ARG_TYPE'));
    assert.throws(() => get(file, 'user.a', 1), typeError('ERR_INVALID_ARG_TYPE'));
  });

  it('readAbsInfo: bad arguments, missing node, not an evdev node', () => {
    const read = raw.readAbsInfo!;
    assert.throws(() => read(), typeError('ERR_INVALID_ARG_TYPE'));
    assert.throws(() => read('/dev/null'), typeError('ERR_INVALID_ARG_TYPE'));
    assert.throws(() => read('/dev/null', -1), typeError('ERR_INVALID_ARG_VALUE'));
    assert.throws(() => read('/dev/null', 64), typeError('ERR_INVALID_ARG_VALUE'));
    assert.throws(() => read('/dev/null', 1.5), typeError('ERR_INVALID_ARG_VALUE'));
    assert.throws(() => read('/dev/null', Number.NaN), typeError('ERR_INVALID_ARG_VALUE'));
    assert.throws(
      () => native.readAbsInfo('/dev/input/triggerd-none', 0),
      systemError('ENOENT', 'open', '/dev/input/triggerd-none'),
    );
    assert.throws(() => native.readAbsInfo('/dev/null', 0), systemError('ENOTTY', 'ioctl', '/dev/null'));
    assert.throws(() => native.readAbsInfo(file, 0), systemError('ENOTTY', 'ioctl', file));
  });

  it('many failing calls in a row leak nothing visible (fds stay closed)', () => {
    const before = fs.readdirSync('/proc/self/fd').length;
    for (let i = 0; i < 2000; i++) {
      assert.throws(() => native.readAbsInfo('/dev/null', i % 64));
    }
    assert.equal(fs.readdirSync('/proc/self/fd').length, before);
  });
});

function uinputSkip(): string | false {
  if (needsRoot !== false) return needsRoot;
  if (!fs.existsSync('/dev/uinput')) {
    return 'needs /dev/uinput (this kernel has no uinput: CONFIG_INPUT_UINPUT off, or `modprobe uinput` not done)';
  }
  try {
    execFileSync('cc', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'needs a C compiler (cc) for the uinput test helper';
  }
  return false;
}

describe('EVIOCGABS on a uinput touchpad', () => {
  let child: ChildProcess | undefined;
  after(() => {
    // Closing stdin makes the helper destroy the device; kill only if it did not exit.
    child?.stdin?.end();
    if (child?.pid !== undefined && child.exitCode === null) setTimeout(() => child?.kill(), 2000).unref();
  });

  it('readAbsInfo and input_id give the touchpad its size in mm', { skip: uinputSkip() }, async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-uinput-'));
    tmpDirs.push(dir);
    const helper = path.join(dir, 'uinput-touchpad');
    execFileSync('cc', ['-o', helper, path.join(REPO_ROOT, 'test', 'helpers', 'uinput-touchpad.c')]);
    child = spawn(helper, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    const sysname = await new Promise<string>((resolve, reject) => {
      let out = '';
      child!.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(out.trim());
      });
      child!.on('exit', (code) => reject(new Error(`uinput helper exited with ${code}`)));
    });
    const inputDir = path.join('/sys/devices/virtual/input', sysname);
    const event = fs.readdirSync(inputDir).find((n) => /^event\d+$/.test(n));
    assert.ok(event !== undefined, `no eventN below ${inputDir}`);
    const devnode = `/dev/input/${event}`;
    // devtmpfs makes the node as the kernel registers it; give it a moment.
    for (let i = 0; i < 50 && !fs.existsSync(devnode); i++) await new Promise((r) => setTimeout(r, 20));

    const x = native.readAbsInfo(devnode, 0);
    assert.equal(x.length, INPUT_ABSINFO_BYTES);
    const host = createSysfsHost({ readAbsInfo: (d, a) => native.readAbsInfo(d, a) });
    const device = builtinDeviceAt(path.join(inputDir, event));
    assert.ok(device !== undefined);
    const r = inputId(['input_id'], device, host);
    assert.ok(r.ok);
    assert.equal(r.properties.get('ID_INPUT_TOUCHPAD'), '1');
    assert.equal(r.properties.get('ID_INPUT_WIDTH_MM'), '100');
    assert.equal(r.properties.get('ID_INPUT_HEIGHT_MM'), '60');
  });
});
