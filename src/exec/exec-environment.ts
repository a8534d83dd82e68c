// The environment of a job, as systemd builds it: EnvironmentFile= parsing (systemd's env-file.c
// state machine), and `$VAR` / `${VAR}` substitution in command lines (replace_env_argv).

/** systemd's default PATH for services (DEFAULT_PATH with split /usr). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A shell-compatible variable name (systemd's env_name_is_valid). */
export function isValidEnvName(name: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
}

export interface EnvFileAssignment {
  key: string;
  value: string;
  line: number;
}

export interface EnvFileParse {
  assignments: EnvFileAssignment[];
  /** Keys that are not valid variable names: skipped, as systemd does (with a warning). */
  invalid: { key: string; line: number }[];
}

const WHITESPACE = ' \t\n\r';
const NEWLINE = '\n\r';
const COMMENTS = '#;';
/** After a backslash inside double quotes these lose the backslash; others keep it. */
const SHELL_NEED_ESCAPE = '"\\`$';

type EnvFileState =
  | 'pre-key'
  | 'key'
  | 'pre-value'
  | 'value'
  | 'value-escape'
  | 'single-quote'
  | 'double-quote'
  | 'double-quote-escape'
  | 'comment'
  | 'comment-escape';

/**
 * KEY=VALUE lines; `#`/`;` comment lines; unquoted values with backslash escapes and trailing
 * whitespace trimmed; '…' verbatim; "…" with \" \\ \` \$ escapes; a backslash-newline continues
 * the line. Lines without '=' are ignored. Later assignments to the same key win (the caller
 * merges in order).
 */
export function parseEnvironmentFile(text: string): EnvFileParse {
  const result: EnvFileParse = { assignments: [], invalid: [] };
  let state: EnvFileState = 'pre-key';
  let key = '';
  let value = '';
  let line = 1;
  // Index in `key` / `value` where trailing whitespace started, or -1.
  let keyWhitespace = -1;
  let valueWhitespace = -1;

  const push = (trimValue: boolean): void => {
    const k = keyWhitespace >= 0 ? key.slice(0, keyWhitespace) : key;
    const v = trimValue && valueWhitespace >= 0 ? value.slice(0, valueWhitespace) : value;
    if (isValidEnvName(k)) result.assignments.push({ key: k, value: v, line });
    else result.invalid.push({ key: k, line });
    key = '';
    value = '';
  };

  for (const c of text) {
    switch (state) {
      case 'pre-key':
        if (COMMENTS.includes(c)) state = 'comment';
        else if (!WHITESPACE.includes(c)) {
          state = 'key';
          keyWhitespace = -1;
          key = c;
        }
        // A newline here ends an empty line.
        if (c === '\n') line++;
        break;
      case 'key':
        if (NEWLINE.includes(c)) {
          state = 'pre-key';
          line++;
          key = '';
        } else if (c === '=') {
          state = 'pre-value';
          valueWhitespace = -1;
          value = '';
        } else {
          if (!WHITESPACE.includes(c)) keyWhitespace = -1;
          else if (keyWhitespace < 0) keyWhitespace = key.length;
          key += c;
        }
        break;
      case 'pre-value':
        if (NEWLINE.includes(c)) {
          state = 'pre-key';
          push(false);
          line++;
        } else if (c === "'") state = 'single-quote';
        else if (c === '"') state = 'double-quote';
        else if (c === '\\') state = 'value-escape';
        else if (!WHITESPACE.includes(c)) {
          state = 'value';
          value += c;
        }
        break;
      case 'value':
        if (NEWLINE.includes(c)) {
          state = 'pre-key';
          push(true);
          line++;
        } else if (c === '\\') {
          state = 'value-escape';
          valueWhitespace = -1;
        } else {
          if (!WHITESPACE.includes(c)) valueWhitespace = -1;
          else if (valueWhitespace < 0) valueWhitespace = value.length;
          value += c;
        }
        break;
      case 'value-escape':
        state = 'value';
        // An escaped newline is eaten (a continuation line).
        if (!NEWLINE.includes(c)) value += c;
        else line++;
        break;
      case 'single-quote':
        if (c === "'") state = 'pre-value';
        else {
          if (c === '\n') line++;
          value += c;
        }
        break;
      case 'double-quote':
        if (c === '"') state = 'pre-value';
        else if (c === '\\') state = 'double-quote-escape';
        else {
          if (c === '\n') line++;
          value += c;
        }
        break;
      case 'double-quote-escape':
        state = 'double-quote';
        if (SHELL_NEED_ESCAPE.includes(c)) value += c;
        else if (c !== '\n') value += '\\' + c;
        else line++;
        break;
      case 'comment':
        if (c === '\\') state = 'comment-escape';
        else if (NEWLINE.includes(c)) {
          state = 'pre-key';
          line++;
        }
        break;
      case 'comment-escape':
        // Since systemd v254 a comment ending in a backslash does not continue onto the next line.
        if (NEWLINE.includes(c)) {
          state = 'pre-key';
          line++;
        } else state = 'comment';
        break;
    }
  }
  if (
    state === 'pre-value' ||
    state === 'value' ||
    state === 'value-escape' ||
    state === 'single-quote' ||
    state === 'double-quote' ||
    state === 'double-quote-escape'
  ) {
    push(state === 'value');
  }
  return result;
}

/**
 * Splits a value into words at whitespace, removing quotes and backslashes (systemd's
 * extract_first_word with EXTRACT_UNQUOTE | EXTRACT_RELAX: an unclosed quote ends at the end).
 */
export function splitUnquote(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '' | "'" | '"' = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') {
      inWord = true;
      if (i + 1 < text.length) word += text[++i];
      else word += '\\';
    } else if (quote !== '') {
      if (c === quote) quote = '';
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (WHITESPACE.includes(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** `${NAME}` anywhere in a word, `$$` for a literal `$`; `$NAME` inside a word is kept as is. */
function replaceInWord(word: string, env: ReadonlyMap<string, string>, unset: Set<string>): string {
  let out = '';
  for (let i = 0; i < word.length; i++) {
    const c = word[i];
    if (c !== '$' || i + 1 >= word.length) {
      out += c;
      continue;
    }
    const next = word[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '{') {
      const close = word.indexOf('}', i + 2);
      const name = close < 0 ? '' : word.slice(i + 2, close);
      // systemd leaves "${" without a closing brace, and ${A:-b} (not supported in command
      // lines), as written.
      if (close < 0 || name.includes(':')) {
        out += c;
        continue;
      }
      const value = env.get(name);
      if (value === undefined) unset.add(name);
      out += value ?? '';
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

export interface ArgvExpansion {
  argv: string[];
  /** Variables referenced but not set (they expand to nothing), for a diagnostic. */
  unset: string[];
}

/**
 * systemd's replace_env_argv: a word that is `$NAME` on its own becomes the variable's value
 * split at whitespace (quotes honoured; zero words when unset or empty); `${NAME}` within a word
 * is replaced by the exact value, always leaving one word; `$$` is a literal `$`.
 */
export function expandArgv(argv: readonly string[], env: ReadonlyMap<string, string>): ArgvExpansion {
  const out: string[] = [];
  const unset = new Set<string>();
  for (const word of argv) {
    if (word.startsWith('$') && word[1] !== '{' && word[1] !== '$') {
      const name = word.slice(1);
      const value = env.get(name);
      if (value === undefined) unset.add(name);
      else out.push(...splitUnquote(value));
      continue;
    }
    out.push(replaceInWord(word, env, unset));
  }
  return { argv: out, unset: [...unset] };
}
