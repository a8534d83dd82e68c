// Recorded real inputs the mutators start from: the repository's fixtures, rules/ and examples/
// always; with `system` also what this machine has (Debian's udev rules and systemd units, its
// fstab and mountinfo, the shared udev captures). CI uses the repository's files only, so a fixed
// seed gives the same inputs on every machine.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** dist/fuzz/corpus.js → the repository. */
export const REPO_ROOT = path.resolve(__dirname, '../..');

export interface CorpusOptions {
  /** Add the machine's own files (not reproducible across machines). */
  system: boolean;
}

/** Largest file taken into a corpus; the mutators make huge inputs themselves. */
const MAX_FILE_BYTES = 512 * 1024;

/** Regular files under `dir` (recursively, sorted, so the corpus order is stable) that `keep` accepts. */
export function readFiles(dir: string, keep: (file: string) => boolean = () => true, limit = 400): Buffer[] {
  const out: Buffer[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try {
      names = fs.readdirSync(d).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (out.length >= limit) return;
      const file = path.join(d, name);
      let st: fs.Stats;
      try {
        st = fs.statSync(file);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(file);
      else if (st.isFile() && st.size <= MAX_FILE_BYTES && keep(file)) {
        try {
          out.push(fs.readFileSync(file));
        } catch {
          // unreadable: not part of the corpus
        }
      }
    }
  };
  walk(dir);
  return out;
}

export function readFile(file: string): Buffer[] {
  try {
    return [fs.readFileSync(file)];
  } catch {
    return [];
  }
}

export const repo = (...parts: string[]): string => path.join(REPO_ROOT, ...parts);

/** Lines of the recorded files that `keep` accepts, each as its own corpus entry. */
export function linesOf(files: readonly Buffer[], keep: (line: string) => boolean): string[] {
  const out: string[] = [];
  for (const f of files) for (const l of f.toString('utf8').split('\n')) if (keep(l)) out.push(l);
  return out;
}

/** Never empty: a corpus with nothing recorded still gives the mutators something to work on. */
export function nonEmpty(items: Buffer[], fallback: string): Buffer[] {
  return items.length > 0 ? items : [Buffer.from(fallback)];
}
