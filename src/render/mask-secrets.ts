// Masks secrets in anything ferrydiag prints: DSN passwords (`mysql://user:****@host`, Go's
// `user:****@tcp(host)`), values of password-like flags and environment variables. Used on every
// output path (text, --json, files, error lines), so a target's command line or a mistyped flag never
// shows a password.

const MASK = '****'

/** Names whose value is a secret: --password, --db-pass, MYSQL_PWD, API_KEY, auth-token, … */
const SECRET_NAME = /(?:pass(?:word|wd)?|pwd|secret|token|api[-_]?key|credentials?)$/i

/** `scheme://user:password@` (the password runs to the last '@' of the token). */
const URL_USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^\s:/@'"]*):(\S*)@/gi
/** Go's `user:password@tcp(`, `@unix(`. */
const GO_USERINFO = /([^\s:/@'"=]+):([^\s@]*)@(tcp6?|unix)\(/g
/** `--password=x`, `PASSWORD=x`, `db_pass: x` inside one token or line. */
const NAMED_VALUE = /((?:^|[\s"'{,;(-])-{0,2}[A-Za-z0-9_.-]*?(?:pass(?:word|wd)?|pwd|secret|token|api[-_]?key|credentials?))(=|:\s*)([^\s"',;)]+)/gi

/** The text with every recognised secret replaced by ****. */
export function maskSecretsInText(text: string): string {
  if (text.length === 0) return text
  return text
    .replace(URL_USERINFO, (_, scheme: string, user: string) => `${scheme}${user}:${MASK}@`)
    .replace(GO_USERINFO, (_, user: string, __: string, proto: string) => `${user}:${MASK}@${proto}(`)
    .replace(NAMED_VALUE, (whole: string, name: string, sep: string, value: string) => (value === MASK ? whole : `${name}${sep}${MASK}`))
}

/**
 * An argv with secrets masked: each element as text, and the element after a bare password-like flag
 * (`--password hunter2`).
 */
export function maskArgv(argv: readonly string[]): string[] {
  return argv.map((arg, i) => {
    const previous = i > 0 ? argv[i - 1] : ''
    if (/^-{1,2}[A-Za-z0-9_.-]+$/.test(previous) && SECRET_NAME.test(previous.replace(/^-+/, ''))) return MASK
    return maskSecretsInText(arg)
  })
}

/** A deep copy of a JSON-like value with every string masked (arrays of strings as argv). */
export function maskSecretsDeep<T>(value: T): T {
  return maskValue(value) as T
}

function maskValue(value: unknown): unknown {
  if (typeof value === 'string') return maskSecretsInText(value)
  if (Array.isArray(value)) {
    if (value.every((item) => typeof item === 'string')) return maskArgv(value as string[])
    return value.map(maskValue)
  }
  if (value !== null && typeof value === 'object') {
    if (ArrayBuffer.isView(value) || value instanceof Date) return value
    const out: Record<string, unknown> = {}
    for (const [key, item] of Object.entries(value)) out[key] = SECRET_NAME.test(key) && typeof item === 'string' && item !== '' ? MASK : maskValue(item)
    return out
  }
  return value
}
