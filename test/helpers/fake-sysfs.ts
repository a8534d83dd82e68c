// A small sysfs tree in a temporary directory: /devices/... with uevent files, and the
// /bus/X/devices and /class/X symlinks that enumeration follows.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export interface FakeDevice {
  devpath: string;
  subsystem: string;
  /** 'class' (default) or 'bus': where the enumeration link lives. */
  kind?: 'class' | 'bus';
  uevent: Record<string, string>;
  driver?: string;
}

export class FakeSysfs {
  readonly root: string;

  constructor() {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), 'triggerd-sysfs-'));
    fs.mkdirSync(path.join(this.root, 'kernel'), { recursive: true });
    this.setSeqnum(0);
  }

  setSeqnum(n: number): void {
    fs.writeFileSync(path.join(this.root, 'kernel', 'uevent_seqnum'), `${n}\n`);
  }

  add(d: FakeDevice): void {
    const dir = path.join(this.root, d.devpath);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'uevent'),
      Object.entries(d.uevent)
        .map(([k, v]) => `${k}=${v}\n`)
        .join(''),
    );
    const kind = d.kind ?? 'class';
    const subsysDir =
      kind === 'class'
        ? path.join(this.root, 'class', d.subsystem)
        : path.join(this.root, 'bus', d.subsystem);
    const linkDir = kind === 'class' ? subsysDir : path.join(subsysDir, 'devices');
    fs.mkdirSync(linkDir, { recursive: true });
    const link = path.join(linkDir, path.basename(d.devpath));
    fs.rmSync(link, { force: true });
    fs.symlinkSync(path.relative(linkDir, dir), link);
    fs.rmSync(path.join(dir, 'subsystem'), { force: true });
    fs.symlinkSync(path.relative(dir, subsysDir), path.join(dir, 'subsystem'));
    if (d.driver !== undefined) {
      const drv = path.join(this.root, 'bus', d.subsystem, 'drivers', d.driver);
      fs.mkdirSync(drv, { recursive: true });
      fs.rmSync(path.join(dir, 'driver'), { force: true });
      fs.symlinkSync(path.relative(dir, drv), path.join(dir, 'driver'));
    }
  }

  remove(d: Pick<FakeDevice, 'devpath' | 'subsystem' | 'kind'>): void {
    const kind = d.kind ?? 'class';
    const linkDir =
      kind === 'class'
        ? path.join(this.root, 'class', d.subsystem)
        : path.join(this.root, 'bus', d.subsystem, 'devices');
    fs.rmSync(path.join(linkDir, path.basename(d.devpath)), { force: true });
    fs.rmSync(path.join(this.root, d.devpath), { recursive: true, force: true });
  }

  cleanup(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}
