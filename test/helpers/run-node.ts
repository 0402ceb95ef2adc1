// Runs a Node script to completion (the built CLI, or the reference pipeline) and collects its output.
import {spawn, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import {fileURLToPath} from 'node:url'

/** The built CLI, `bin/run.js`. */
export const CLI = fileURLToPath(new URL('../../../bin/run.js', import.meta.url))

/**
 * A test timeout for a busy machine: `ms` times FERRYDIAG_TEST_TIMEOUT_SCALE (default 1). The defaults
 * below are already generous (a pipeline start was seen to take over 30 s on a loaded 2-core machine);
 * the factor is for slower places still. Timeouts only bound a wait on a condition, so a larger one
 * costs nothing when the machine is fast.
 */
export function testTimeoutMs(ms: number): number {
  const scale = Number(process.env.FERRYDIAG_TEST_TIMEOUT_SCALE)
  return Number.isFinite(scale) && scale > 0 ? Math.ceil(ms * scale) : ms
}

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
  /** Sees all of stdout so far, each time more arrives. */
  onStdout?: (stdoutSoFar: string) => void
  /** SIGKILL after this long (default 120 s, scaled by testTimeoutMs). */
  timeoutMs?: number
  cwd?: string
  /** Extra environment variables for the child (on top of this process's). */
  env?: Record<string, string>
}

export async function runNode(script: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const startedMs = performance.now()
  const env = options.env ? {...process.env, ...options.env} : undefined
  const child = spawn(process.execPath, [script, ...args], {cwd: options.cwd, env, stdio: ['ignore', 'pipe', 'pipe']})
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    stdout += d
    options.onStdout?.(stdout)
  })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
    options.onStderr?.(stderr)
  })
  // 'close', not 'exit': only then has everything the child wrote been read from its pipes.
  const closed = once(child, 'close') as Promise<[number | null, NodeJS.Signals | null]>
  const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? testTimeoutMs(120_000))
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
