// `triggerctl verify FILE...`: load each file the way the daemon would (its own directory first in
// the search path, so drop-ins next to it count) and report what is wrong, like
// `systemd-analyze verify`. Errors fail the run; warnings are printed but do not. On top of the
// loader's diagnostics it checks that Exec*= executables exist and are executable and that User=
// and Group= name existing accounts (warnings, as the account or binary may come with a package
// installed later; pass `strict` to make missing executables errors, as systemd-analyze does).
import fs = require('node:fs');
import nodePath = require('node:path');
import type { Diagnostic, ExecCommand, LoadedUnitFile, SourceRef } from './config-types';
import { instanceName, parseUnitName } from './specifiers';
import { DEFAULT_UNIT_PATHS, UnitLoader, type UnitLoaderOptions } from './unit-loader';
import { parseUnitSyntax } from './unit-syntax';

export const VERIFY_CODES = {
  verify: 'ERR_UNIT_VERIFY',
  execMissing: 'ERR_UNIT_EXEC_MISSING',
  userMissing: 'ERR_UNIT_USER_MISSING',
} as const;

export interface VerifyResult {
  file: string;
  /** The unit that was checked (an instance name for templates). */
  unit?: string;
  loadState?: LoadedUnitFile['loadState'];
  diagnostics: Diagnostic[];
}

export interface VerifyOptions extends UnitLoaderOptions {
  /** Search path after the file's own directory (default DEFAULT_UNIT_PATHS). */
  unitPaths?: readonly string[];
  /** Where bare executable names are looked up (systemd's fixed search path by default). */
  execSearchPath?: readonly string[];
  passwdFile?: string;
  groupFile?: string;
  /** Missing or non-executable Exec*= binaries are errors (as in systemd-analyze verify). */
  strict?: boolean;
}

const EXEC_SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const TEMPLATE_TEST_INSTANCE = 'test_instance';

function accountNames(file: string): Set<string> | undefined {
  try {
    const names = new Set<string>();
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const name = line.split(':')[0];
      if (name !== '' && !name.startsWith('#')) names.add(name);
    }
    return names;
  } catch {
    return undefined;
  }
}

/** What is wrong with an executable path: undefined when it is a runnable file. */
function execProblem(path: string): string | undefined {
  try {
    const st = fs.statSync(path);
    if (!st.isFile()) return 'is not a regular file';
    if ((st.mode & 0o111) === 0) return 'is not executable';
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'does not exist' : `cannot be used (${code ?? 'error'})`;
  }
}

/** Where the last assignment of `key` in the unit's own section is, across the unit's files. */
function lastAssignment(unit: LoadedUnitFile, key: string): SourceRef | undefined {
  const section = unit.socket !== undefined ? 'Socket' : 'Service';
  let found: SourceRef | undefined;
  const files = [...(unit.fragmentPath !== undefined ? [unit.fragmentPath] : []), ...unit.dropInPaths];
  for (const f of files) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(f);
    } catch {
      continue;
    }
    for (const s of parseUnitSyntax(bytes, f).sections) {
      if (s.name !== section) continue;
      for (const e of s.entries) if (e.key === key) found = e.value === '' ? undefined : e.source;
    }
  }
  return found;
}

function at(source: SourceRef | undefined, text: string): string {
  return source !== undefined ? `${source.file}:${source.line}: ${text}` : text;
}

function checkExec(unit: LoadedUnitFile, options: VerifyOptions, out: Diagnostic[]): void {
  const s = unit.service;
  const k = unit.socket;
  const lists: ExecCommand[][] =
    s !== undefined
      ? [
          s.execCondition,
          s.execStartPre,
          s.execStart,
          s.execStartPost,
          s.execReload,
          s.execStop,
          s.execStopPost,
        ]
      : k !== undefined
        ? [k.execStartPre, k.execStartPost, k.execStopPre, k.execStopPost]
        : [];
  const severity = options.strict === true ? 'error' : 'warning';
  const searchPath = options.execSearchPath ?? EXEC_SEARCH_PATH;
  for (const cmd of lists.flat()) {
    // A variable as the executable is resolved only at start.
    if (cmd.path.includes('$')) continue;
    let problem: string | undefined;
    if (cmd.path.startsWith('/')) {
      problem = execProblem(cmd.path);
    } else {
      const hit = searchPath.map((d) => nodePath.join(d, cmd.path)).find((p) => execProblem(p) === undefined);
      if (hit === undefined) problem = `is not found in ${searchPath.join(':')}`;
    }
    if (problem !== undefined) {
      out.push({
        severity,
        code: VERIFY_CODES.execMissing,
        message: at(cmd.source, `command ${cmd.path} ${problem}`),
        source: cmd.source,
      });
    }
  }
}

function checkAccounts(unit: LoadedUnitFile, options: VerifyOptions, out: Diagnostic[]): void {
  const e = unit.service?.exec ?? unit.socket?.exec;
  if (e === undefined) return;
  const checks: [string, string | undefined, string][] = [
    ['User', e.user, options.passwdFile ?? '/etc/passwd'],
    ['Group', e.group, options.groupFile ?? '/etc/group'],
  ];
  // The socket file's owner (SocketUser=/SocketGroup=): a missing account fails the start.
  if (unit.socket !== undefined) {
    checks.push(['SocketUser', unit.socket.socketUser, options.passwdFile ?? '/etc/passwd']);
    checks.push(['SocketGroup', unit.socket.socketGroup, options.groupFile ?? '/etc/group']);
  }
  for (const [key, value, file] of checks) {
    if (value === undefined || /^[0-9]+$/.test(value)) continue;
    const names = accountNames(file);
    if (names === undefined || names.has(value)) continue;
    const source = lastAssignment(unit, key);
    out.push({
      severity: 'warning',
      code: VERIFY_CODES.userMissing,
      message: at(source, `${key}=${value}: no such ${key.endsWith('User') ? 'user' : 'group'} in ${file}`),
      source,
    });
  }
}

function verifyOne(file: string, options: VerifyOptions): VerifyResult {
  const path = nodePath.resolve(file);
  const name = nodePath.basename(path);
  const parts = parseUnitName(name);
  if (parts === undefined) {
    return {
      file,
      diagnostics: [
        {
          severity: 'error',
          code: VERIFY_CODES.verify,
          message: `${file}: ${JSON.stringify(name)} is not a valid unit file name`,
        },
      ],
    };
  }
  const loader = new UnitLoader(
    [nodePath.dirname(path), ...(options.unitPaths ?? DEFAULT_UNIT_PATHS)],
    options,
  );
  let unit = loader.load(name);
  // A template is checked as an instance: its DefaultInstance= or a placeholder.
  if (parts.kind === 'template' && unit.loadState === 'loaded') {
    unit = loader.load(instanceName(parts, unit.install.defaultInstance ?? TEMPLATE_TEST_INSTANCE));
  }
  const diagnostics = [...unit.diagnostics];
  const fail = (message: string): void => {
    diagnostics.push({ severity: 'error', code: VERIFY_CODES.verify, message: `${file}: ${message}` });
  };
  switch (unit.loadState) {
    case 'masked':
      fail(`unit ${unit.name} is masked`);
      break;
    case 'not-found':
    case 'bad-setting':
    case 'error':
      if (!diagnostics.some((d) => d.severity === 'error'))
        fail(`unit ${unit.name} failed to load (${unit.loadState})`);
      break;
    case 'loaded':
      checkExec(unit, options, diagnostics);
      checkAccounts(unit, options, diagnostics);
      break;
  }
  return { file, unit: unit.name, loadState: unit.loadState, diagnostics };
}

/** Check unit files; one result per file, in the order given. Never throws. */
export function verifyUnitFiles(files: readonly string[], options: VerifyOptions = {}): VerifyResult[] {
  return files.map((f) => {
    try {
      return verifyOne(f, options);
    } catch (e) {
      return {
        file: f,
        diagnostics: [
          { severity: 'error', code: VERIFY_CODES.verify, message: `${f}: ${(e as Error).message}` },
        ],
      };
    }
  });
}

/** Whether any result has an error (the command then exits non-zero). */
export function verifyFailed(results: readonly VerifyResult[]): boolean {
  return results.some((r) => r.diagnostics.some((d) => d.severity === 'error'));
}

/** One line per diagnostic, "error: …" / "warning: …", for the terminal. */
export function formatVerifyResults(results: readonly VerifyResult[]): string {
  const lines: string[] = [];
  for (const r of results)
    for (const d of r.diagnostics) lines.push(`${d.severity}: ${d.message} [${d.code}]`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
