// Writes small hwdb.bin files for tests, laid out as systemd-hwdb lays them out: header, nodes
// (children before their parent, so the root comes last), then the strings. The trie is a radix
// tree like systemd's: a node's prefix holds the rest of a match string up to where two strings
// part, glob characters included, so lookups meet globs both in prefixes and as child characters.
// Reports where each node and child entry went, for tests that corrupt them on purpose.

export interface HwdbTestEntry {
  /** The match line, e.g. 'usb:v1D6Bp*'. */
  match: string;
  props: readonly (readonly [string, string])[];
  /** v2 files: the priority of the file the entry came from, and its line there. */
  priority?: number;
  line?: number;
  filename?: string;
}

export interface HwdbTestImage {
  bytes: Buffer;
  rootOffset: number;
  /** Each node by the text that leads to it (its ancestors' prefixes and child characters and its own prefix). */
  nodes: Map<string, { offset: number; prefix: string; children: { c: string; entryOffset: number }[] }>;
}

interface Value {
  key: string;
  value: string;
  filename: string;
  line: number;
  priority: number;
}

interface Node {
  prefix: string;
  children: Map<string, Node>;
  values: Value[];
}

function insert(root: Node, match: string, value: Value): void {
  let node = root;
  let i = 0;
  for (;;) {
    let p = 0;
    while (p < node.prefix.length && i + p < match.length && node.prefix[p] === match[i + p]) p++;
    if (p < node.prefix.length) {
      // Split: the rest of this prefix moves into a new child.
      const rest: Node = { prefix: node.prefix.slice(p + 1), children: node.children, values: node.values };
      node.children = new Map([[node.prefix[p]!, rest]]);
      node.values = [];
      node.prefix = node.prefix.slice(0, p);
    }
    i += p;
    if (i === match.length) {
      node.values.push(value);
      return;
    }
    const c = match[i]!;
    const child = node.children.get(c);
    if (child === undefined) {
      node.children.set(c, { prefix: match.slice(i + 1), children: new Map(), values: [value] });
      return;
    }
    node = child;
    i++;
  }
}

/** A hwdb.bin with `entries`; `format` 2 (default) has 32-byte value entries, 1 the old 16. */
export function buildHwdb(entries: readonly HwdbTestEntry[], format: 1 | 2 = 2): HwdbTestImage {
  const root: Node = { prefix: '', children: new Map(), values: [] };
  entries.forEach((entry, index) => {
    for (const [key, value] of entry.props) {
      insert(root, entry.match, {
        key: ` ${key}`,
        value,
        filename: entry.filename ?? '/test/hwdb.d/60-test.hwdb',
        line: entry.line ?? index + 1,
        priority: entry.priority ?? 0,
      });
    }
  });

  const valueSize = format === 2 ? 32 : 16;
  const headerSize = 80;
  const order: { node: Node; path: string }[] = [];
  const visit = (node: Node, path: string): void => {
    const sorted = [...node.children].sort(([a], [b]) => a.charCodeAt(0) - b.charCodeAt(0));
    node.children = new Map(sorted);
    for (const [c, child] of node.children) visit(child, path + node.prefix + c);
    order.push({ node, path: path + node.prefix });
  };
  visit(root, '');
  const offsets = new Map<Node, number>();
  let at = headerSize;
  for (const { node } of order) {
    offsets.set(node, at);
    at += 24 + node.children.size * 16 + node.values.length * valueSize;
  }
  const nodesLength = at - headerSize;

  const strings = new Map<string, number>();
  const stringParts: Buffer[] = [];
  let stringsLength = 0;
  const stringOffset = (s: string): number => {
    const known = strings.get(s);
    if (known !== undefined) return known;
    const offset = headerSize + nodesLength + stringsLength;
    const bytes = Buffer.from(`${s}\0`, 'utf8');
    stringParts.push(bytes);
    stringsLength += bytes.length;
    strings.set(s, offset);
    return offset;
  };
  stringOffset('');

  const nodeBytes = Buffer.alloc(nodesLength);
  const nodes: HwdbTestImage['nodes'] = new Map();
  for (const { node, path } of order) {
    const offset = offsets.get(node)!;
    let o = offset - headerSize;
    nodeBytes.writeBigUInt64LE(BigInt(stringOffset(node.prefix)), o);
    nodeBytes.writeUInt8(node.children.size, o + 8);
    nodeBytes.writeBigUInt64LE(BigInt(node.values.length), o + 16);
    o += 24;
    const children: { c: string; entryOffset: number }[] = [];
    for (const [c, child] of node.children) {
      children.push({ c, entryOffset: o + headerSize });
      nodeBytes.writeUInt8(c.charCodeAt(0), o);
      nodeBytes.writeBigUInt64LE(BigInt(offsets.get(child)!), o + 8);
      o += 16;
    }
    for (const v of node.values) {
      nodeBytes.writeBigUInt64LE(BigInt(stringOffset(v.key)), o);
      nodeBytes.writeBigUInt64LE(BigInt(stringOffset(v.value)), o + 8);
      if (format === 2) {
        nodeBytes.writeBigUInt64LE(BigInt(stringOffset(v.filename)), o + 16);
        nodeBytes.writeUInt32LE(v.line, o + 24);
        nodeBytes.writeUInt16LE(v.priority, o + 28);
      }
      o += valueSize;
    }
    nodes.set(path, { offset, prefix: node.prefix, children });
  }

  const header = Buffer.alloc(headerSize);
  header.write('KSLPHHRH', 0, 'latin1');
  const fields = [252, headerSize + nodesLength + stringsLength, headerSize, 24, 16, valueSize];
  fields.push(offsets.get(root)!, nodesLength, stringsLength);
  fields.forEach((n, i) => header.writeBigUInt64LE(BigInt(n), 8 + i * 8));
  return {
    bytes: Buffer.concat([header, nodeBytes, ...stringParts]),
    rootOffset: offsets.get(root)!,
    nodes,
  };
}
