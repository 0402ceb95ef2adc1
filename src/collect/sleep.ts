// Waiting inside a sampling window that Ctrl-C (an AbortSignal) may end early.
import {setTimeout as sleep} from 'node:timers/promises'

/** Sleeps ms; resolves true when the time passed, false when the signal fired first. Never rejects. */
export async function sleepUnlessAborted(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal?.aborted) return false
  try {
    await sleep(Math.max(0, ms), undefined, signal === undefined ? undefined : {signal})
    return true
  } catch (error) {
    if ((error as Error).name === 'AbortError') return false
    throw error
  }
}

/** A window that only measures time (nothing attached): progress every 250 ms until done or aborted. */
export async function waitWindow(durationMs: number, signal: AbortSignal, onProgress: (elapsedMs: number, totalMs: number) => void): Promise<void> {
  const started = performance.now()
  while (!signal.aborted) {
    const elapsed = performance.now() - started
    onProgress(Math.min(elapsed, durationMs), durationMs)
    if (elapsed >= durationMs) break
    await sleepUnlessAborted(Math.min(250, durationMs - elapsed), signal)
  }
}
