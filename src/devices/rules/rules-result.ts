// What running the rules on one event decided: the executor (pure) produces it, the effects
// layer (symlinks, node permissions, database, rebroadcast, RUN programs) applies it.
import type { SourceRef } from '../../units/config-types';

/** One program the rules want run after the event is processed (RUN{program}). */
export interface RunProgram {
  kind: 'program' | 'builtin';
  /** After substitution; split into argv by the runner as udev does (no shell). */
  command: string;
  source: SourceRef;
}

export interface RulesResult {
  /** The event's properties after the rules (ENV{} assignments, IMPORT results), in order. */
  properties: Map<string, string>;
  /** TAG+= / TAG= results. */
  tags: Set<string>;
  /** SYMLINK results: paths relative to /dev, in order. */
  devlinks: string[];
  /** OPTIONS+="link_priority=N" (default 0). */
  linkPriority: number;
  /** NAME= for network interfaces (recorded; interfaces are never renamed unless configured). */
  name?: string;
  /** Device node ownership and mode, when the rules set them. */
  owner?: string;
  group?: string;
  mode?: number;
  /** SECLABEL{module}="label". */
  seclabels: Map<string, string>;
  /** Where each module's SECLABEL was last set (for the node labelling's log lines). */
  seclabelSources?: Map<string, SourceRef>;
  /** ATTR{file}="value" and SYSCTL{key}="value" writes, in order. */
  attrWrites: { path: string; value: string; source: SourceRef }[];
  sysctlWrites: { key: string; value: string; source: SourceRef }[];
  run: RunProgram[];
  /** OPTIONS: watch (inotify on the node), db_persist, static_node..., string_escape etc. */
  options: Set<string>;
  /** Problems met while executing (a PROGRAM that timed out, a bad substitution): file:line each. */
  diagnostics: {
    severity: 'error' | 'warning';
    message: string;
    source?: SourceRef;
    /** Added (optional): a stable code such as ERR_RULE_PROGRAM, so callers can filter without parsing text. */
    code?: string;
  }[];
}
