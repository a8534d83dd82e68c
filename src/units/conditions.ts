// Condition*= and Assert*= checks (systemd.unit(5)). Each check reads the system as it is at
// start time; `negate` and `trigger` ('!' and '|') are applied by the caller. A condition this
// module does not know holds, with a warning, so a unit written for a newer systemd still starts.
import fs = require('node:fs');
import os = require('node:os');
import type { ConditionSpec } from './config-types';

export interface ConditionEnv {
  /** Root for path checks (tests use a temporary tree). */
  root?: string;
  warn?: (message: string) => void;
}

function stat(p: string, follow = true): fs.Stats | undefined {
  try {
    return follow ? fs.statSync(p) : fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (const ch of glob) {
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function globExists(pattern: string): boolean {
  const dir = pattern.slice(0, pattern.lastIndexOf('/') + 1) || '/';
  const base = pattern.slice(pattern.lastIndexOf('/') + 1);
  if (/[*?[]/.test(dir)) return false; // globs in directory parts are rare; keep this simple
  try {
    const re = globToRegExp(base);
    return fs.readdirSync(dir).some((n) => re.test(n));
  } catch {
    return false;
  }
}

function isMountPoint(p: string): boolean {
  const a = stat(p);
  const parent = stat(p === '/' ? '/' : p.replace(/\/+$/, '') + '/..');
  if (a === undefined || parent === undefined) return false;
  return p === '/' || a.dev !== parent.dev || a.ino === parent.ino;
}

function userMatches(value: string): boolean {
  const info = os.userInfo();
  if (value === '@system') return info.uid < 1000;
  return value === String(info.uid) || value === info.username;
}

/** Whether the condition's test holds (before '!' negation). */
export function conditionHolds(c: ConditionSpec, env: ConditionEnv = {}): boolean {
  const root = env.root ?? '';
  const p = root + c.value;
  switch (c.name) {
    case 'PathExists':
      return stat(p) !== undefined;
    case 'PathExistsGlob':
      return globExists(p);
    case 'PathIsDirectory':
      return stat(p)?.isDirectory() === true;
    case 'PathIsSymbolicLink':
      return stat(p, false)?.isSymbolicLink() === true;
    case 'PathIsMountPoint':
      return isMountPoint(p);
    case 'PathIsReadWrite':
      try {
        fs.accessSync(p, fs.constants.W_OK);
        return true;
      } catch {
        return false;
      }
    case 'DirectoryNotEmpty':
      try {
        return stat(p)?.isDirectory() === true && fs.readdirSync(p).length > 0;
      } catch {
        return false;
      }
    case 'FileNotEmpty': {
      const s = stat(p);
      return s !== undefined && s.isFile() && s.size > 0;
    }
    case 'FileIsExecutable': {
      const s = stat(p);
      return s !== undefined && s.isFile() && (s.mode & 0o111) !== 0;
    }
    case 'User':
      return userMatches(c.value);
    case 'Host':
      return os.hostname() === c.value;
    case 'KernelCommandLine':
      try {
        const words = fs.readFileSync('/proc/cmdline', 'utf8').trim().split(/\s+/);
        return c.value.includes('=')
          ? words.includes(c.value)
          : words.some((w) => w === c.value || w.startsWith(`${c.value}=`));
      } catch {
        return false;
      }
    case 'Environment':
      return c.value.includes('=')
        ? process.env[c.value.slice(0, c.value.indexOf('='))] === c.value.slice(c.value.indexOf('=') + 1)
        : process.env[c.value] !== undefined;
    case 'Architecture':
      return archName() === c.value || (c.value === 'native' && true);
    case 'Virtualization':
      return virtualizationMatches(c.value);
    case 'FirstBoot':
      return c.value === 'no' || c.value === 'false';
    case 'ACPower':
      return true;
    default:
      env.warn?.(
        `Condition${c.name}= is not supported by triggerd; treated as holding (${c.source.file}:${c.source.line})`,
      );
      return true;
  }
}

interface Virt {
  vm: string | undefined;
  container: string | undefined;
}

let virtCache: Virt | undefined;

/** A small systemd-detect-virt: the hypervisor from DMI or the cpuinfo flag, containers from marker files. */
function detectVirt(): Virt {
  if (virtCache !== undefined) return virtCache;
  const read = (f: string): string => {
    try {
      return fs.readFileSync(f, 'latin1').trim().toLowerCase();
    } catch {
      return '';
    }
  };
  let container: string | undefined;
  if (fs.existsSync('/.dockerenv')) container = 'docker';
  else if (fs.existsSync('/run/.containerenv')) container = 'podman';
  else {
    const env = read('/proc/1/environ')
      .split('\0')
      .find((e) => e.startsWith('container='));
    if (env !== undefined) container = env.slice('container='.length);
  }
  const dmi = `${read('/sys/class/dmi/id/sys_vendor')} ${read('/sys/class/dmi/id/product_name')}`;
  let vm: string | undefined;
  for (const [needle, name] of [
    ['qemu', 'qemu'],
    ['kvm', 'kvm'],
    ['vmware', 'vmware'],
    ['virtualbox', 'oracle'],
    ['microsoft', 'microsoft'],
    ['amazon ec2', 'amazon'],
    ['google', 'google'],
    ['firecracker', 'kvm'],
  ] as const) {
    if (dmi.includes(needle)) vm = name;
  }
  if (vm === undefined && /^flags\s*:.*\bhypervisor\b/m.test(read('/proc/cpuinfo'))) vm = 'vm-other';
  virtCache = { vm, container };
  return virtCache;
}

function virtualizationMatches(value: string): boolean {
  const v = detectVirt();
  const any = v.vm !== undefined || v.container !== undefined;
  switch (value) {
    case 'yes':
    case 'true':
    case '1':
      return any;
    case 'no':
    case 'false':
    case '0':
      return !any;
    case 'vm':
      return v.vm !== undefined && v.container === undefined;
    case 'container':
      return v.container !== undefined;
    default:
      return v.container === value || (v.container === undefined && v.vm === value);
  }
}

function archName(): string {
  switch (process.arch) {
    case 'x64':
      return 'x86-64';
    case 'arm64':
      return 'arm64';
    case 'ia32':
      return 'x86';
    default:
      return process.arch;
  }
}
