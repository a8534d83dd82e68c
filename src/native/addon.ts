// The one module that loads triggerd_native.node. Everything else takes a `NativeNetlink`
// (see ./types), so pure tests can pass test/helpers/fake-native instead.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path = require('node:path');
import type { NativeNetlink } from './types';

const ADDON_FILE = 'triggerd_native.node';

let cached: NativeNetlink | undefined;

/**
 * Where an addon may be: this file runs from src/native/ or, compiled, from dist/src/native/.
 * $TRIGGERD_NATIVE_DIR names the one directory to load from instead (the sanitizer build of
 * .ci/sanitize), so a run against that build never silently falls back to build/Release.
 */
export function addonCandidates(fileName = ADDON_FILE): string[] {
  const override = process.env.TRIGGERD_NATIVE_DIR;
  if (override !== undefined && override !== '') return [path.resolve(override, fileName)];
  const roots = [path.resolve(__dirname, '..', '..'), path.resolve(__dirname, '..', '..', '..')];
  const candidates: string[] = [];
  for (const root of roots) {
    for (const flavour of ['Release', 'Debug']) candidates.push(path.join(root, 'build', flavour, fileName));
  }
  return candidates;
}

/**
 * Finds and requires one of the project's `.node` files (each addon has exactly one TypeScript
 * module that calls this and declares its interface). Throws with a hint when it is not built.
 */
export function requireAddon(fileName: string): { loaded: unknown; file: string } {
  const candidates = addonCandidates(fileName);
  const found = candidates.find((candidate) => existsSync(candidate));
  if (found === undefined) {
    throw new Error(
      `triggerd native addon ${fileName} is not built (looked in ${candidates.join(', ')}); ` +
        'run "npm install" (it runs node-gyp rebuild)',
    );
  }
  return { loaded: createRequire(__filename)(found), file: found };
}

/** Loads the addon once per process (loading a Node-API addon twice in one environment is not safe). */
export function loadNative(): NativeNetlink {
  if (cached !== undefined) return cached;
  const { loaded, file } = requireAddon(ADDON_FILE);
  cached = checkShape(loaded, file);
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
