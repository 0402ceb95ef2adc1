// The process-wide list of things the CLI must undo before it exits: a session to detach (which restores
// what ferrydiag changed in the target and closes an inspector it opened), a scratch table to drop.
// Library code registers here; the termination path (src/cli/interrupt.ts) runs them on a signal.

export type Cleanup = () => Promise<void>

const cleanups = new Map<number, {label: string; run: Cleanup}>()
let nextId = 1

/** Registers a cleanup; call the returned function once it has run normally (or is no longer needed). */
export function registerCleanup(label: string, run: Cleanup): () => void {
  const id = nextId++
  cleanups.set(id, {label, run})
  return () => {
    cleanups.delete(id)
  }
}

/**
 * Runs every registered cleanup, newest first, each at most once, all started together (they touch
 * different things: the target, a database). Never throws. Resolves when all have settled or
 * `budgetMs` has passed; returns the labels of those still running then.
 */
export async function runCleanups(budgetMs: number): Promise<string[]> {
  const pending = [...cleanups.entries()].reverse()
  cleanups.clear()
  const running = new Set(pending.map(([, entry]) => entry.label))
  const all = Promise.all(
    pending.map(async ([, entry]) => {
      try {
        await entry.run()
      } catch {
        // A cleanup reports its own failure where it can; the others must still run.
      }
      running.delete(entry.label)
    }),
  )
  let timer: NodeJS.Timeout | undefined
  await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, budgetMs)))])
  clearTimeout(timer)
  return [...running]
}

/** Labels of the cleanups registered now (for messages and tests). */
export function pendingCleanups(): string[] {
  return [...cleanups.values()].map((entry) => entry.label)
}
