// Loading one of the project's `.node` files whose exports its loader (src/native/*-addon.ts)
// declares as an interface: the part every such loader shares.
import { requireAddon } from './addon';

/**
 * Requires `fileName` and checks that it exports a function under each of `names`; their
 * signatures are the C++ side's contract with the loader that declares `T`. Throws, naming the
 * file and what is missing, when it is not triggerd's `what` addon (an old or foreign build).
 */
export function requireCheckedAddon<T>(fileName: string, what: string, names: readonly string[]): T {
  const { loaded, file } = requireAddon(fileName);
  if (
    typeof loaded === 'object' &&
    loaded !== null &&
    names.every((name) => typeof Reflect.get(loaded, name) === 'function')
  ) {
    // The shape is checked above; the signatures are the C++ side's contract with the loader.
    return loaded as T;
  }
  throw new Error(`${file} is not triggerd's ${what} addon (${names.join('/')} missing); rebuild it`);
}
