// Ctrl-C during a sampling window: the first interrupt ends the window early so the command can still
// report (and clean up) what it measured; a second one, while that is under way, exits at once.

/** Exit status after Ctrl-C ended the window early (128 + SIGINT, as shells report it). */
export const EXIT_INTERRUPTED = 130

export interface Interrupt {
  /** Aborted by the first Ctrl-C (or by abort()). */
  readonly signal: AbortSignal
  /** Ends the window as a Ctrl-C would, e.g. when a probe running beside it failed. */
  abort(): void
  /** Stops listening; call in a finally. */
  dispose(): void
}

export function listenForInterrupt(): Interrupt {
  const controller = new AbortController()
  const onSigint = (): void => {
    // CLI layer only: a second Ctrl-C means the user will not wait for cleanup.
    if (controller.signal.aborted) process.exit(EXIT_INTERRUPTED)
    controller.abort()
  }
  process.on('SIGINT', onSigint)
  return {
    signal: controller.signal,
    abort: () => controller.abort(),
    dispose: () => {
      process.off('SIGINT', onSigint)
    },
  }
}
