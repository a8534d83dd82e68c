// Writes the kernel uevent wire format, `ACTION@DEVPATH\0KEY=VALUE\0...`, so tests and benchmarks
// can synthesize recorded streams. It writes exactly what it is given and does not validate (tests
// use it to build bad messages too); parseKernelUevent(encodeKernelUevent(e)) gives e back for any
// event the parser accepted.

/** Anything shaped like a Uevent; a parsed `Uevent` is accepted as is. */
export interface KernelUeventInput {
  /** Not restricted to UeventAction so tests can encode bad actions. */
  action: string;
  devpath: string;
  subsystem?: string;
  devtype?: string;
  /** Absolute ('/dev/loop0') or relative; written relative, as the kernel does. */
  devname?: string;
  major?: number;
  minor?: number;
  seqnum?: number;
  /** Written in iteration order. Typed fields above that are missing here are added (see below). */
  properties?: Iterable<readonly [string, string]> | Readonly<Record<string, string>>;
}

/**
 * Property order: `properties` as given; ACTION, DEVPATH and SUBSYSTEM, when missing there, go
 * first (the kernel's order); missing MAJOR, MINOR, DEVNAME, DEVTYPE are appended, then SEQNUM.
 * A typed field that contradicts the same key in `properties` is a caller bug: TypeError.
 */
export function encodeKernelUevent(input: KernelUeventInput): Buffer {
  const given: [string, string][] = [];
  const index = new Map<string, number>();
  for (const [key, value] of entriesOf(input.properties)) {
    index.set(key, given.length);
    given.push([key, key === 'DEVNAME' ? relativeDevname(value) : value]);
  }

  const head: [string, string][] = [];
  const tail: [string, string][] = [];
  const want = (key: string, value: string | number | undefined, into: [string, string][]): void => {
    if (value === undefined) return;
    const text = key === 'DEVNAME' ? relativeDevname(String(value)) : String(value);
    const at = index.get(key);
    if (at === undefined) into.push([key, text]);
    else if (given[at][1] !== text) {
      throw new TypeError(`encodeKernelUevent: ${key} field and property disagree`);
    }
  };
  want('ACTION', input.action, head);
  want('DEVPATH', input.devpath, head);
  want('SUBSYSTEM', input.subsystem, head);
  want('MAJOR', input.major, tail);
  want('MINOR', input.minor, tail);
  want('DEVNAME', input.devname, tail);
  want('DEVTYPE', input.devtype, tail);
  want('SEQNUM', input.seqnum, tail);

  let out = `${input.action}@${input.devpath}\0`;
  for (const list of [head, given, tail]) {
    for (const [key, value] of list) out += `${key}=${value}\0`;
  }
  return Buffer.from(out, 'utf8');
}

function entriesOf(properties: KernelUeventInput['properties']): Iterable<readonly [string, string]> {
  if (properties === undefined) return [];
  if (isIterable(properties)) return properties;
  return Object.entries(properties);
}

function isIterable(
  value: Iterable<readonly [string, string]> | Readonly<Record<string, string>>,
): value is Iterable<readonly [string, string]> {
  return typeof (value as Partial<Iterable<unknown>>)[Symbol.iterator] === 'function';
}

/** The kernel sends DEVNAME relative to /dev ('/dev/' alone stays, so it reads back the same). */
function relativeDevname(devname: string): string {
  return devname.length > 5 && devname.startsWith('/dev/') ? devname.slice(5) : devname;
}
