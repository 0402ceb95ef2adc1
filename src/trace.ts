// Phase markers on stderr when FERRYDIAG_TRACE is set (`ferrydiag-trace PHASE`): lets tests send a signal
// at a known stage of a command (attaching, a heap snapshot, a perturbation) instead of a guessed delay.

export function trace(phase: string): void {
  if (process.env.FERRYDIAG_TRACE) {
    try {
      process.stderr.write(`ferrydiag-trace ${phase}\n`)
    } catch {
      // The terminal is gone.
    }
  }
}
