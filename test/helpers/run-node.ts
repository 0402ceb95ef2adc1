// Runs a Node script to completion (the built CLI, or the reference pipeline) and collects its output.
import {spawn, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import {fileURLToPath} from 'node:url'

/** The built CLI, `bin/run.js`. */
export const CLI = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))

export interface RunResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  elapsedMs: number
}

export interface RunOptions {
  /** Called once the child is spawned; awaited before waiting for the exit (e.g. to send SIGINT later). */
  onStart?: (child: ChildProcess) => void | Promise<void>
  /** Sees all of stderr so far, each time more arrives. */
  onStderr?: (stderrSoFar: string) => void
  /** SIGKILL after this long (default 60 s). */
  timeoutMs?: number
  cwd?: string
}

export async function runNode(script: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const startedMs = performance.now()
  const child = spawn(process.execPath, [script, ...args], {cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d))
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
    options.onStderr?.(stderr)
  })
  // 'close', not 'exit': only then has everything the child wrote been read from its pipes.
  const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>
  const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
  try {
    await options.onStart?.(child)
    const [code, signal] = await closed
    return {code, signal, stdout, stderr, elapsedMs: performance.now() - startedMs}
  } finally {
    clearTimeout(killer)
  }
}

/** `node bin/run.js ARGS`. */
export function runCli(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return runNode(CLI, args, options)
}
