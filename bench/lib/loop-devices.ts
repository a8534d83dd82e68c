// The machine's existing loop block devices, and bounded bursts of `change` writes to their
// `uevent` files: the one way to make real kernel uevents here without changing any device.
import * as fs from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';

const VIRTUAL_BLOCK = '/sys/devices/virtual/block';

export interface LoopDevices {
  names: string[];
  devpaths: Set<string>;
  ueventFiles: string[];
}

export function existingLoopDevices(): LoopDevices {
  let names: string[];
  try {
    names = fs.readdirSync(VIRTUAL_BLOCK).filter((n) => /^loop\d+$/.test(n));
  } catch {
    names = [];
  }
  names.sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  return {
    names,
    devpaths: new Set(names.map((n) => `/devices/virtual/block/${n}`)),
    ueventFiles: names.map((n) => `${VIRTUAL_BLOCK}/${n}/uevent`),
  };
}

export interface BurstResult {
  /** performance.now() just before the first write. */
  startedAt: number;
  writes: number;
  errors: number;
  writeMs: number;
}

/**
 * Write `change` `writes` times round-robin over the devices, yielding to the event loop every
 * `chunk` writes so an in-process listener drains its socket while the burst goes on.
 */
export async function writeChangeBurst(
  files: readonly string[],
  writes: number,
  chunk = 250,
): Promise<BurstResult> {
  let errors = 0;
  const startedAt = performance.now();
  for (let i = 0; i < writes; i++) {
    try {
      fs.writeFileSync(files[i % files.length], 'change');
    } catch {
      errors++;
    }
    if ((i + 1) % chunk === 0) await nextTurn();
  }
  return { startedAt, writes, errors, writeMs: performance.now() - startedAt };
}
