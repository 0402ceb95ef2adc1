// Spawns real target processes for attach tests and benchmarks: a Node script (text or file) with extra
// execArgv, its inspector port read from stderr, stdout kept as lines, and cleanup that never leaks.

import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

export interface SpawnTargetOptions {
  /** Script source; written to a temporary file (.mjs or .cjs per `moduleType`). */
  script?: string
  /** An existing script file; used when `script` is absent. */
  file?: string
  moduleType?: 'esm' | 'cjs'
  /** Node flags before the script, e.g. ['--inspect=127.0.0.1:0'] or ['--import', registerPath]. */
  execArgv?: string[]
  /** Arguments after the script. */
  args?: string[]
  env?: NodeJS.ProcessEnv
  /** Working directory of the child (default: this process's). */
  cwd?: string
  /** Resolve only once stdout has a line matching this (default: /^ready$/). null: do not wait. */
  readyLine?: RegExp | null
  /** Give up waiting for readiness (and the inspector line, when --inspect is in execArgv), ms. */
  startTimeoutMs?: number
}

export interface TargetProcess {
  readonly pid: number
  /** The latest port from "Debugger listening on ws://HOST:PORT/…", or null if none printed yet. */
  readonly inspectPort: number | null
  readonly stdoutLines: string[]
  readonly stderrText: string
  readonly child: ChildProcess
  /** Resolves with the first stdout line (already seen or future) that matches. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>
  /** Writes `line` to stdin and resolves with the first matching stdout line printed after it. */
  request(line: string, answer: RegExp, timeoutMs?: number): Promise<string>
  /** Writes one line to the target's stdin (a script may read commands from it). */
  sendLine(line: string): void
  /** True while the process has not exited. */
  isAlive(): boolean
  /** Settles when the process exits. */
  readonly exited: Promise<{code: number | null; signal: NodeJS.Signals | null}>
  /** SIGKILL (unless already gone) and wait for exit. Safe to call twice. */
  kill(): Promise<void>
}

const liveChildren = new Set<ChildProcess>()
const tempDirs = new Set<string>()

// Last line of defence if a test forgets: never leave targets running after the test process ends.
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL')
  for (const dir of tempDirs) rmSync(dir, {recursive: true, force: true})
})

/** Spawns `node [execArgv] script` and waits until it is ready (and, with --inspect, listening). */
export async function spawnTarget(options: SpawnTargetOptions): Promise<TargetProcess> {
  let scriptPath = options.file
  if (options.script !== undefined) {
    const dir = mkdtempSync(path.join(tmpdir(), 'ferrydiag-attach-target-'))
    tempDirs.add(dir)
    scriptPath = path.join(dir, options.moduleType === 'cjs' ? 'target.cjs' : 'target.mjs')
    writeFileSync(scriptPath, options.script)
  }
  if (scriptPath === undefined) throw new TypeError('spawnTarget needs `script` or `file`')
  const child = spawn(process.execPath, [...(options.execArgv ?? []), scriptPath, ...(options.args ?? [])], {
    env: options.env ?? process.env,
    cwd: options.cwd,
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  const target = wrapChild(child)
  const startTimeoutMs = options.startTimeoutMs ?? 15_000
  const readyLine = options.readyLine === undefined ? /^ready$/ : options.readyLine
  try {
    if (readyLine) await target.waitForLine(readyLine, startTimeoutMs)
    if ((options.execArgv ?? []).some((arg) => /^--inspect(-brk|-wait)?(=|$)/.test(arg))) {
      await waitFor(() => target.inspectPort !== null, startTimeoutMs, 'the "Debugger listening" line', target)
    }
  } catch (error) {
    await target.kill()
    throw error
  }
  return target
}

/** Spawns any command (e.g. `sleep 30` as a non-Node target), tracked and cleaned up like a target. */
export function spawnOther(command: string, args: string[]): TargetProcess {
  return wrapChild(spawn(command, args, {stdio: ['pipe', 'pipe', 'pipe']}))
}

/** Kills every process this helper started. Call from `after()`. */
export async function killAllTargets(): Promise<void> {
  await Promise.all(
    [...liveChildren].map(
      (child) =>
        new Promise<void>((resolve) => {
          child.once('exit', () => resolve())
          child.kill('SIGKILL')
          if (child.exitCode !== null || child.signalCode !== null) resolve()
        }),
    ),
  )
  for (const dir of tempDirs) rmSync(dir, {recursive: true, force: true})
  tempDirs.clear()
}

function wrapChild(child: ChildProcess): TargetProcess {
  if (child.pid === undefined) throw new Error('spawn failed: no pid')
  liveChildren.add(child)
  const stdoutLines: string[] = []
  let stderrText = ''
  let inspectPort: number | null = null
  const lineWaiters = new Set<() => void>()
  let stdoutRest = ''
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (chunk: string) => {
    const parts = (stdoutRest + chunk).split('\n')
    stdoutRest = parts.pop() ?? ''
    stdoutLines.push(...parts)
    for (const wake of lineWaiters) wake()
  })
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (chunk: string) => {
    stderrText += chunk
    const ports = [...stderrText.matchAll(/Debugger listening on ws:\/\/[^\s/]*:(\d+)\//g)]
    if (ports.length > 0) inspectPort = Number(ports[ports.length - 1][1])
    for (const wake of lineWaiters) wake()
  })
  // A target that exits early must not crash the test with EPIPE on stdin.
  child.stdin!.on('error', () => undefined)
  let alive = true
  const exited = new Promise<{code: number | null; signal: NodeJS.Signals | null}>((resolve) => {
    child.once('exit', (code, signal) => {
      alive = false
      liveChildren.delete(child)
      for (const wake of lineWaiters) wake()
      resolve({code, signal})
    })
  })

  /** The first stdout line at index >= from that matches, now or when it arrives. */
  const waitForLineFrom = (from: number, pattern: RegExp, timeoutMs: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => {
        const line = stdoutLines.slice(from).find((candidate) => pattern.test(candidate))
        if (line !== undefined) {
          finish()
          resolve(line)
          return true
        }
        if (!alive) {
          finish()
          reject(new Error(`target ${child.pid} exited before printing ${pattern}; stderr: ${stderrText.trim()}`))
          return true
        }
        return false
      }
      const finish = (): void => {
        clearTimeout(timer)
        lineWaiters.delete(wake)
      }
      const wake = (): void => {
        check()
      }
      const timer = setTimeout(() => {
        finish()
        reject(new Error(`target ${child.pid} printed no line matching ${pattern} within ${timeoutMs} ms`))
      }, timeoutMs)
      lineWaiters.add(wake)
      check()
    })

  const target: TargetProcess = {
    pid: child.pid,
    get inspectPort() {
      return inspectPort
    },
    stdoutLines,
    get stderrText() {
      return stderrText
    },
    child,
    exited,
    isAlive: () => alive,
    waitForLine: (pattern: RegExp, timeoutMs = 15_000) => waitForLineFrom(0, pattern, timeoutMs),
    request(line: string, answer: RegExp, timeoutMs = 15_000): Promise<string> {
      const from = stdoutLines.length
      target.sendLine(line)
      return waitForLineFrom(from, answer, timeoutMs)
    },
    sendLine(line: string): void {
      child.stdin!.write(`${line}\n`)
    },
    async kill(): Promise<void> {
      if (alive) child.kill('SIGKILL')
      await exited
    },
  }
  return target
}

async function waitFor(predicate: () => boolean, timeoutMs: number, what: string, target: TargetProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (!target.isAlive()) throw new Error(`target ${target.pid} exited before ${what}; stderr: ${target.stderrText.trim()}`)
    if (Date.now() > deadline) throw new Error(`target ${target.pid} gave no ${what} within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
