// The unit dependency graph: typed edges, each stored in both directions, built in one go from
// the loaded units' [Unit] dependencies plus edges from elsewhere ([Install] symlinks, a device's
// SYSTEMD_WANTS, a socket triggering its service). Immutable once built: a reload builds a new
// graph from scratch and swaps it in.
import type { DependencyKind } from '../units/config-types';

/** Edge kinds: the [Unit] dependency kinds, their inverses, and Triggers/TriggeredBy. */
export type EdgeKind =
  | DependencyKind
  | 'WantedBy'
  | 'RequiredBy'
  | 'RequisiteOf'
  | 'BoundBy'
  | 'ConsistsOf'
  | 'UpheldBy'
  | 'ConflictedBy'
  | 'OnFailureOf'
  | 'OnSuccessOf'
  | 'Triggers'
  | 'TriggeredBy';

/** Each kind and the kind the same edge has seen from the other end. */
export const INVERSE_EDGE: Readonly<Record<EdgeKind, EdgeKind>> = Object.freeze({
  Wants: 'WantedBy',
  WantedBy: 'Wants',
  Requires: 'RequiredBy',
  RequiredBy: 'Requires',
  Requisite: 'RequisiteOf',
  RequisiteOf: 'Requisite',
  BindsTo: 'BoundBy',
  BoundBy: 'BindsTo',
  PartOf: 'ConsistsOf',
  ConsistsOf: 'PartOf',
  Upholds: 'UpheldBy',
  UpheldBy: 'Upholds',
  Conflicts: 'ConflictedBy',
  ConflictedBy: 'Conflicts',
  OnFailure: 'OnFailureOf',
  OnFailureOf: 'OnFailure',
  OnSuccess: 'OnSuccessOf',
  OnSuccessOf: 'OnSuccess',
  After: 'Before',
  Before: 'After',
  PropagatesReloadTo: 'ReloadPropagatedFrom',
  ReloadPropagatedFrom: 'PropagatesReloadTo',
  Triggers: 'TriggeredBy',
  TriggeredBy: 'Triggers',
});

export const EDGE_KINDS: readonly EdgeKind[] = Object.freeze(Object.keys(INVERSE_EDGE) as EdgeKind[]);

/** One unit as the graph needs it: its name, other names, and its [Unit] dependencies. */
export interface UnitDependencyRecord {
  name: string;
  /** Other names of the same unit (symlinks, Alias=); edges to them land on `name`. */
  aliases?: readonly string[];
  dependencies: Partial<Record<DependencyKind, readonly string[]>>;
}

/** An edge that does not come from the unit's own [Unit] section. */
export interface DependencyEdge {
  from: string;
  kind: EdgeKind;
  to: string;
}

export interface GraphDiagnostic {
  severity: 'warning';
  code: 'WARN_DEP_SELF' | 'WARN_DEP_ALIAS';
  message: string;
  unit: string;
}

const EMPTY: ReadonlySet<string> = new Set<string>();

export class DependencyGraph {
  private readonly nodes = new Map<string, Map<EdgeKind, Set<string>>>();
  private readonly aliasOf = new Map<string, string>();
  private readonly diags: GraphDiagnostic[] = [];

  private constructor() {}

  static empty(): DependencyGraph {
    return DependencyGraph.build([]);
  }

  /** Build a graph from unit records and extra edges. Names not among the records become bare nodes. */
  static build(
    records: Iterable<UnitDependencyRecord>,
    extra: Iterable<DependencyEdge> = [],
  ): DependencyGraph {
    const g = new DependencyGraph();
    const list = [...records];
    const names = new Set(list.map((r) => r.name));
    // Names first, so that an edge to an alias lands on the unit whatever the record order.
    for (const r of list) {
      g.node(r.name);
      for (const alias of r.aliases ?? []) {
        if (alias === r.name) continue;
        const owner = g.aliasOf.get(alias);
        if ((owner !== undefined && owner !== r.name) || names.has(alias)) {
          g.diags.push({
            severity: 'warning',
            code: 'WARN_DEP_ALIAS',
            message: `alias ${alias} of ${r.name} is taken (${owner !== undefined ? `an alias of ${owner}` : 'a unit of that name'}); ignoring it`,
            unit: r.name,
          });
          continue;
        }
        g.aliasOf.set(alias, r.name);
      }
    }
    for (const r of list) {
      for (const [kind, targets] of Object.entries(r.dependencies) as [DependencyKind, readonly string[]][]) {
        for (const to of targets) g.addEdge(r.name, kind, to);
      }
    }
    for (const e of extra) g.addEdge(e.from, e.kind, e.to);
    Object.freeze(g);
    return g;
  }

  /** The unit's canonical name (aliases resolve to the unit they name). */
  resolve(name: string): string {
    return this.aliasOf.get(name) ?? name;
  }

  has(unit: string): boolean {
    return this.nodes.has(this.resolve(unit));
  }

  /** Every unit in the graph, in the order first seen. */
  units(): string[] {
    return [...this.nodes.keys()];
  }

  /** The units `unit` has an edge of `kind` to. */
  targets(unit: string, kind: EdgeKind): ReadonlySet<string> {
    return this.nodes.get(this.resolve(unit))?.get(kind) ?? EMPTY;
  }

  hasEdge(from: string, kind: EdgeKind, to: string): boolean {
    return this.targets(from, kind).has(this.resolve(to));
  }

  /** All edges out of `unit` (both directions are stored, so inverse kinds show up too). */
  edges(unit: string): { kind: EdgeKind; to: string }[] {
    const out: { kind: EdgeKind; to: string }[] = [];
    for (const [kind, set] of this.nodes.get(this.resolve(unit)) ?? []) {
      for (const to of set) out.push({ kind, to });
    }
    return out;
  }

  get diagnostics(): readonly GraphDiagnostic[] {
    return this.diags;
  }

  private node(name: string): Map<EdgeKind, Set<string>> {
    let n = this.nodes.get(name);
    if (n === undefined) {
      n = new Map();
      this.nodes.set(name, n);
    }
    return n;
  }

  private addEdge(fromName: string, kind: EdgeKind, toName: string): void {
    const from = this.resolve(fromName);
    const to = this.resolve(toName);
    if (from === to) {
      // systemd drops dependencies of a unit on itself too; they could only deadlock or loop.
      this.diags.push({
        severity: 'warning',
        code: 'WARN_DEP_SELF',
        message: `${kind}=${toName} in ${fromName} names the unit itself; ignoring it`,
        unit: from,
      });
      return;
    }
    add(this.node(from), kind, to);
    add(this.node(to), INVERSE_EDGE[kind], from);
  }
}

function add(node: Map<EdgeKind, Set<string>>, kind: EdgeKind, to: string): void {
  let set = node.get(kind);
  if (set === undefined) {
    set = new Set();
    node.set(kind, set);
  }
  set.add(to);
}
