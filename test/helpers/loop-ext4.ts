// A small ext4 file system on a loop device for tests on a real disk file system: made in a temp
// dir, mounted with `mount -o loop` (the loop device is released on unmount), and torn down by
// unmount() even after a failure. Root only: callers skip otherwise.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface LoopExt4 {
  /** The mount point. */
  dir: string;
  unmount(): void;
}

/** Why a loop-mounted ext4 cannot be made here, or undefined when it can. */
export function loopExt4Unavailable(): string | undefined {
  if (process.getuid?.() !== 0) return `needs root (running as uid ${process.getuid?.()})`;
  if (spawnSync('mkfs.ext4', ['-V']).error !== undefined) return 'mkfs.ext4 is not installed';
  if (!fs.existsSync('/dev/loop-control')) return 'no /dev/loop-control';
  return undefined;
}

export function mountLoopExt4(tag: string, sizeMiB = 64): LoopExt4 {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `triggerd-${tag}-`));
  const image = path.join(work, 'fs.ext4');
  const dir = path.join(work, 'mnt');
  fs.mkdirSync(dir);
  fs.writeFileSync(image, '');
  fs.truncateSync(image, sizeMiB * 1024 * 1024);
  let mounted = false;
  const unmount = (): void => {
    if (mounted) {
      const r = spawnSync('umount', [dir], { encoding: 'utf8' });
      // Still busy (a child still in there): detach lazily; the loop goes when it is released.
      const lazy = r.status !== 0 ? spawnSync('umount', ['-l', dir], { encoding: 'utf8' }) : undefined;
      mounted = false;
      // Said loudly: a leaked mount (and its loop device) must fail the test, not pass silently.
      if (
        fs
          .readFileSync('/proc/self/mountinfo', 'utf8')
          .split('\n')
          .some((l) => l.split(' ')[4] === dir)
      )
        throw new Error(
          `${dir} is still mounted: umount said ${r.stderr.trim()}; umount -l said ${lazy?.stderr.trim()}`,
        );
    }
    fs.rmSync(work, { recursive: true, force: true });
  };
  try {
    const mk = spawnSync('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', image], { encoding: 'utf8' });
    if (mk.status !== 0) throw new Error(`mkfs.ext4 failed: ${mk.stderr}`);
    const m = spawnSync('mount', ['-o', 'loop', image, dir], { encoding: 'utf8' });
    if (m.status !== 0) throw new Error(`mount -o loop failed: ${m.stderr}`);
    mounted = true;
  } catch (err) {
    unmount();
    throw err;
  }
  return { dir, unmount };
}
