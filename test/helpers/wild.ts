// The wild corpus (fixtures/wild/): reads each program's `/* ferrydiag-wild` header (its ground truth,
// see fixtures/wild/README.md) and starts programs under the inspector the way a user would attach to them.

import {readdirSync, readFileSync} from 'node:fs'
import path from 'node:path'
import type {TestContext} from 'node:test'
import {fileURLToPath} from 'node:url'
import {spawnTarget, type TargetProcess} from './child-process.js'

/** The repository root (this file runs from dist/test/helpers/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))
/** fixtures/wild/ in the source tree (the programs are plain JavaScript, never compiled). */
export const WILD_DIR = path.join(REPO_ROOT, 'fixtures', 'wild')

export const WILD_TRUTHS = ['healthy', 'slow', 'stuck'] as const
export const WILD_BUGS = ['none', 'lost-resolver', 'split-queue', 'stalled-stream-write', 'orphan-emitter'] as const
export const WILD_LAGS = ['healthy', 'falling-behind', 'stuck', 'unknown'] as const
export type WildTruth = (typeof WILD_TRUTHS)[number]
export type WildBug = (typeof WILD_BUGS)[number]
export type WildLag = (typeof WILD_LAGS)[number]

export interface WildStuckAt {
  /** Relative to fixtures/wild/, as written in the header, e.g. `linked-handoff/queue.mjs`. */
  file: string
  /** Absolute path of that file. */
  path: string
  /** 1-based line of the await. */
  line: number
}

export interface WildProgram {
  /** Entry file relative to fixtures/wild/, e.g. `fastq-row-batches.cjs`. */
  file: string
  /** Absolute path of the entry file. */
  path: string
  about: string
  libraries: string[]
  truth: WildTruth
  bug: WildBug
  stuckAt: WildStuckAt[]
  instances: string[]
  ready: RegExp
  /** Extra CLI arguments, `${SOURCE}`/`${TARGET}` not yet replaced. */
  args: string[]
  needs?: 'mariadb'
  lag?: WildLag
  bottleneck?: string
  /** Every key of the header as written (unknown keys included). */
  header: Record<string, string>
}

const HEADER_START = '/* ferrydiag-wild'

/** Parses the header of one entry file; throws naming the file and the key when it breaks the contract. */
export function parseWildHeader(file: string, text: string): WildProgram {
  const fail = (why: string): never => {
    throw new Error(`fixtures/wild/${file}: ${why}`)
  }
  if (!text.startsWith(HEADER_START)) fail(`does not start with "${HEADER_START}"`)
  const end = text.indexOf('*/')
  if (end < 0) fail('header comment is not closed')
  const header: Record<string, string> = {}
  for (const raw of text.slice(HEADER_START.length, end).split('\n')) {
    const line = raw.replace(/^\s*\*?\s?/, '')
    const match = /^([a-z][a-z-]*):\s*(.*?)\s*$/.exec(line)
    if (match === null) {
      if (line.trim() !== '') fail(`header line is not "key: value": ${JSON.stringify(raw)}`)
      continue
    }
    if (match[1] in header) fail(`header key "${match[1]}" appears twice`)
    header[match[1]] = match[2]
  }
  const required = (key: string): string => header[key] || fail(`header has no "${key}"`)
  const oneOf = <T extends string>(key: string, allowed: readonly T[], value: string): T =>
    (allowed as readonly string[]).includes(value) ? (value as T) : fail(`"${key}: ${value}" is not one of ${allowed.join(', ')}`)
  const list = (value: string | undefined): string[] =>
    (value ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '')

  const truth = oneOf('truth', WILD_TRUTHS, required('truth'))
  const bug = oneOf('bug', WILD_BUGS, required('bug'))
  if ((truth === 'stuck') !== (bug !== 'none')) fail(`"truth: ${truth}" contradicts "bug: ${bug}"`)
  const stuckAt = list(header['stuck-at']).map((site): WildStuckAt => {
    const match = /^(.+):(\d+)$/.exec(site) ?? fail(`stuck-at "${site}" is not file:line`)
    return {file: match[1], path: path.join(WILD_DIR, match[1]), line: Number(match[2])}
  })
  if (bug !== 'none' && stuckAt.length === 0) fail(`"bug: ${bug}" needs stuck-at`)
  const instances = list(header.instances)
  if ((bug === 'split-queue' || bug === 'orphan-emitter') && instances.length !== 2) {
    fail(`"bug: ${bug}" needs instances: sender-side.path, receiver-side.path`)
  }
  let ready: RegExp
  try {
    ready = new RegExp(required('ready'))
  } catch (error) {
    return fail(`ready is not a regular expression: ${(error as Error).message}`)
  }
  const libraries = list(required('libraries'))
  const program: WildProgram = {
    file,
    path: path.join(WILD_DIR, file),
    about: required('about'),
    libraries: libraries.length === 1 && libraries[0] === 'none' ? [] : libraries,
    truth,
    bug,
    stuckAt,
    instances,
    ready,
    args: (header.args ?? '').split(/\s+/).filter((arg) => arg !== ''),
    header,
  }
  if (header.needs !== undefined) program.needs = oneOf('needs', ['mariadb'] as const, header.needs)
  if (header.lag !== undefined) program.lag = oneOf('lag', WILD_LAGS, header.lag)
  if (header.bottleneck !== undefined) program.bottleneck = header.bottleneck
  return program
}

/** Every program of the corpus: each .mjs/.cjs/.js file under fixtures/wild/ that starts with the header. */
export function listWildPrograms(): WildProgram[] {
  const programs: WildProgram[] = []
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, {withFileTypes: true})) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory() && entry.name !== 'node_modules') visit(full)
      else if (entry.isFile() && /\.(mjs|cjs|js)$/.test(entry.name)) {
        const text = readFileSync(full, 'utf8')
        // Sibling modules of a program carry no header; only entry files do.
        if (text.startsWith(HEADER_START)) programs.push(parseWildHeader(path.relative(WILD_DIR, full), text))
      }
    }
  }
  visit(WILD_DIR)
  return programs.sort((a, b) => a.file.localeCompare(b.file))
}

export interface StartWildOptions {
  /** DSN substituted for `${SOURCE}` in the program's args. */
  source?: string
  /** DSN substituted for `${TARGET}` in the program's args. */
  target?: string
  /** Node flags after `--inspect=127.0.0.1:0` and before the script. */
  extraNodeArgs?: string[]
  /** Arguments after the header's `args` (a later `--batch-size N` overrides the header's: parseArgs keeps the last). */
  extraArgs?: string[]
  /** When given, the program is stopped when this test ends. */
  t?: TestContext
  /** Time allowed for the inspector line and the ready line (default 30 s). */
  startTimeoutMs?: number
  /** false: start without `--inspect` (for `--pid`, which opens it with SIGUSR1); inspectPort is then 0. */
  inspector?: boolean
}

export interface WildProcess {
  readonly pid: number
  /** The inspector's port; 0 when started with `inspector: false`. */
  readonly inspectPort: number
  /** Everything printed on stdout so far. */
  stdout(): string
  stderr(): string
  /** How the process ended (null while it runs). */
  exit(): {code: number | null; signal: NodeJS.Signals | null} | null
  /** SIGTERM, then SIGKILL if it has not exited within `graceMs` (default 3 s). Safe to call twice. */
  stop(graceMs?: number): Promise<void>
  /** The underlying target (waitForLine and friends). */
  readonly target: TargetProcess
}

/** Replaces `${SOURCE}` and `${TARGET}` in args; throws when an arg needs a DSN that was not given. */
export function substituteWildArgs(program: WildProgram, dsns: {source?: string; target?: string}): string[] {
  return program.args.map((arg) =>
    arg.replace(/\$\{(SOURCE|TARGET)\}/g, (_, which: 'SOURCE' | 'TARGET') => {
      const dsn = which === 'SOURCE' ? dsns.source : dsns.target
      if (dsn === undefined) throw new TypeError(`fixtures/wild/${program.file} needs a ${which.toLowerCase()} DSN for its args`)
      return dsn
    }),
  )
}

/** Starts `node --inspect=127.0.0.1:0 fixtures/wild/<file> <args>` from the repository root and waits for
 * the inspector line and the program's ready line. */
export async function startWildProgram(program: WildProgram, options: StartWildOptions = {}): Promise<WildProcess> {
  const args = [...substituteWildArgs(program, options), ...(options.extraArgs ?? [])]
  const target = await spawnTarget({
    file: path.relative(REPO_ROOT, program.path),
    cwd: REPO_ROOT,
    execArgv: [...(options.inspector === false ? ['--inspect-port=0'] : ['--inspect=127.0.0.1:0']), ...(options.extraNodeArgs ?? [])],
    args,
    readyLine: program.ready,
    startTimeoutMs: options.startTimeoutMs ?? 30_000,
  })
  let exitInfo: {code: number | null; signal: NodeJS.Signals | null} | null = null
  void target.exited.then((info) => (exitInfo = info))
  const stop = async (graceMs = 3_000): Promise<void> => {
    if (!target.isAlive()) return
    target.child.kill('SIGTERM')
    const killer = setTimeout(() => target.child.kill('SIGKILL'), graceMs)
    try {
      exitInfo = await target.exited
    } finally {
      clearTimeout(killer)
    }
  }
  options.t?.after(() => stop())
  return {
    pid: target.pid,
    inspectPort: target.inspectPort ?? 0,
    stdout: () => target.stdoutLines.join('\n'),
    stderr: () => target.stderrText,
    exit: () => exitInfo,
    stop,
    target,
  }
}
