// Exec plans kept per command between runs: a path- or timer-triggered job starts the same
// command again and again, and building its plan from the unit's settings (the environment, the
// credentials, the limits, the sandbox check) cost as much as the rest of the start. The half
// that depends on the settings alone is prepared once per command (prepareExecPlan) and each run
// completes it (completeExecPlan); the result is what buildExecPlan returns.
//
// An entry is used only while everything it was prepared from is the same: the unit's exec
// context (a daemon-reload makes new objects), the base environment, the user database (the
// supervisor replaces it when /etc/passwd or /etc/group change), the runtime directory, the mount
// table given, the search path, the session flag and the values PassEnvironment= read. Otherwise
// it is prepared again. Commands that cannot be prepared ahead (EnvironmentFile=, a sandbox with
// mount steps) are remembered as such per exec context and built whole every time.
import type { ExecCommand, ExecContext } from '../units/config-types';
import {
  buildExecPlan,
  completeExecPlan,
  prepareExecPlan,
  type BuiltExecPlan,
  type ExecEnvironmentInput,
  type ExecPlanOptions,
  type PreparedExecPlan,
} from './exec-context-plan';

interface Entry {
  ctx: ExecContext;
  /** undefined: this command is built whole every time (for this exec context). */
  prepared: PreparedExecPlan | undefined;
  base: ExecEnvironmentInput['base'];
  pass: ExecEnvironmentInput['pass'];
  userDatabase: ExecPlanOptions['userDatabase'];
  userDatabaseRoot: string | undefined;
  mountInfo: string | undefined;
  runtimeDir: string;
  searchPath: ExecPlanOptions['searchPath'];
  newSession: boolean | undefined;
  nofileHardLimit: number | undefined;
}

export interface ExecPlanCacheStats {
  /** Plans completed from a prepared half. */
  hits: number;
  /** Halves prepared (first run of a command, or something it depends on changed). */
  prepared: number;
  /** Plans built whole (not preparable, or a run the halves cannot compose). */
  built: number;
}

export class ExecPlanCache {
  /** Keyed by the command object: a reload's new objects leave the old entries to the collector. */
  private readonly entries = new WeakMap<ExecCommand, Entry>();
  readonly stats: ExecPlanCacheStats = { hits: 0, prepared: 0, built: 0 };

  /** buildExecPlan(ctx, cmd, env, opts), from a prepared half where one is valid. */
  build(ctx: ExecContext, cmd: ExecCommand, env: ExecEnvironmentInput, opts: ExecPlanOptions): BuiltExecPlan {
    let entry = this.entries.get(cmd);
    if (entry === undefined || !matches(entry, ctx, env, opts)) {
      // Not preparable stays so for the same settings: no second attempt per run.
      if (entry === undefined || entry.prepared !== undefined || entry.ctx !== ctx) {
        entry = this.prepare(ctx, cmd, env, opts);
        this.entries.set(cmd, entry);
      }
    }
    if (entry.prepared !== undefined) {
      const done = completeExecPlan(entry.prepared, env.extra ?? {}, opts);
      if (done !== undefined) {
        this.stats.hits++;
        return done;
      }
    }
    this.stats.built++;
    return buildExecPlan(ctx, cmd, env, opts);
  }

  private prepare(
    ctx: ExecContext,
    cmd: ExecCommand,
    env: ExecEnvironmentInput,
    opts: ExecPlanOptions,
  ): Entry {
    const prepared = prepareExecPlan(ctx, cmd, env, opts);
    if (prepared !== undefined) this.stats.prepared++;
    return {
      ctx,
      prepared,
      base: env.base,
      pass: env.pass,
      userDatabase: opts.userDatabase,
      userDatabaseRoot: opts.userDatabaseRoot,
      mountInfo: opts.mountInfo,
      runtimeDir: opts.runtimeDir,
      searchPath: opts.searchPath,
      newSession: opts.newSession,
      nofileHardLimit: opts.nofileHardLimit,
    };
  }
}

/** Whether `entry` was prepared from the same inputs as this run's. */
function matches(entry: Entry, ctx: ExecContext, env: ExecEnvironmentInput, opts: ExecPlanOptions): boolean {
  if (
    entry.ctx !== ctx ||
    entry.base !== env.base ||
    entry.pass !== env.pass ||
    entry.userDatabase !== opts.userDatabase ||
    entry.userDatabaseRoot !== opts.userDatabaseRoot ||
    entry.mountInfo !== opts.mountInfo ||
    entry.runtimeDir !== opts.runtimeDir ||
    entry.searchPath !== opts.searchPath ||
    entry.newSession !== opts.newSession ||
    entry.nofileHardLimit !== opts.nofileHardLimit
  )
    return false;
  if (opts.unitName === '' || opts.unitName.includes('/')) return false;
  const pass = env.pass ?? process.env;
  for (const [name, value] of entry.prepared?.passed ?? []) if (pass[name] !== value) return false;
  return true;
}
