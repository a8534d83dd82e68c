// `triggerctl verify-rules [FILE…]`, like `udevadm verify`: compile the files (or the whole rule
// set) and print one line per problem. The caller turns `hasErrors` into the exit status.
import { compileRuleFiles, rulesFiles, DEFAULT_RULES_DIRS, type CompileOptions } from './rules-compiler';
import { formatSource, type RuleDiagnostic } from './rules-lexer';

export interface VerifyReport {
  files: string[];
  /** `file:line:column: error: message [CODE]`, in file then line order. */
  lines: string[];
  diagnostics: RuleDiagnostic[];
  errors: number;
  warnings: number;
  hasErrors: boolean;
}

export function formatRuleDiagnostic(d: RuleDiagnostic): string {
  return `${formatSource(d.source)}: ${d.severity}: ${d.message} [${d.code}]`;
}

/** Verify `files`, or every rule file udev would load from `dirs` when `files` is empty. */
export function verifyRules(
  files: readonly string[],
  dirs: readonly string[] = DEFAULT_RULES_DIRS,
  options: CompileOptions = {},
): VerifyReport {
  const list = files.length > 0 ? [...files] : rulesFiles(dirs);
  const order = new Map(list.map((f, i) => [f, i]));
  const diagnostics = compileRuleFiles(list, options).diagnostics.slice();
  diagnostics.sort(
    (a, b) =>
      (order.get(a.source.file) ?? 0) - (order.get(b.source.file) ?? 0) ||
      a.source.line - b.source.line ||
      a.source.column - b.source.column,
  );
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  return {
    files: list,
    lines: diagnostics.map(formatRuleDiagnostic),
    diagnostics,
    errors,
    warnings: diagnostics.length - errors,
    hasErrors: errors > 0,
  };
}
