// The one module that loads triggerd_native.node. Everything else takes a `NativeNetlink`
// (see ./types), so pure tests can pass test/helpers/fake-native instead.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type { NativeNetlink } from './types';

const ADDON_FILE = 'triggerd_native.node';

let cached: NativeNetlink | undefined;

/** Where the addon may be: this file runs from src/native/ or, compiled, from dist/src/native/. */
export function addonCandidates(): string[] {
  const roots = [path.resolve(__dirname, '..', '..'), path.resolve(__dirname, '..', '..', '..')];
  const candidates: string[] = [];
  for (const root of roots) {
    for (const flavour of ['Release', 'Debug'])
      candidates.push(path.join(root, 'build', flavour, ADDON_FILE));
  }
  return candidates;
}

/** Loads the addon once per process (loading a Node-API addon twice in one environment is not safe). */
export function loadNative(): NativeNetlink {
  if (cached !== undefined) return cached;
  const candidates = addonCandidates();
  const found = candidates.find((candidate) => existsSync(candidate));
  if (found === undefined) {
    throw new Error(
      `triggerd native addon ${ADDON_FILE} is not built (looked in ${candidates.join(', ')}); ` +
        'run "npm install" (it runs node-gyp rebuild)',
    );
  }
  const loaded: unknown = createRequire(__filename)(found);
  cached = checkShape(loaded, found);
  return cached;
}

function checkShape(loaded: unknown, file: string): NativeNetlink {
  if (
    typeof loaded === 'object' &&
    loaded !== null &&
    'openUeventSocket' in loaded &&
    typeof loaded.openUeventSocket === 'function' &&
    'peerCredentials' in loaded &&
    typeof loaded.peerCredentials === 'function'
  ) {
    // The shape is checked above; the signatures are the C++ side's contract with ./types.
    return loaded as NativeNetlink;
  }
  throw new Error(
    `${file} is not triggerd's native addon (openUeventSocket/peerCredentials missing); rebuild it`,
  );
}
