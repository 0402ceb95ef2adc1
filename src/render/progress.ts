// A one-line progress bar on stderr while a command samples over a window. Only on a TTY and never with
// --json, so piped output and scripts see nothing of it; the line is erased when done.

/** The part of a stream the bar needs (process.stderr satisfies it). */
export interface ProgressStream {
  isTTY?: boolean
  columns?: number
  write(text: string): boolean
}

export interface ProgressLine {
  /** Redraws the bar: elapsed and total in ms. */
  update(elapsedMs: number, totalMs: number): void
  /** Erases the line (idempotent). */
  clear(): void
  /** False when nothing is ever drawn (not a TTY, or --json). */
  readonly enabled: boolean
}

export interface ProgressOptions {
  stream?: ProgressStream
  /** Set for --json: nothing is drawn. */
  json?: boolean
  /** Text before the bar, e.g. "sampling 127.0.0.1:9229". */
  label: string
}

const BAR_WIDTH = 24

/** The text of the bar for a fraction 0..1, e.g. "[##########··············]  2.1/5.0 s". Exposed for tests. */
export function formatProgress(label: string, elapsedMs: number, totalMs: number): string {
  const fraction = totalMs > 0 ? Math.min(1, Math.max(0, elapsedMs / totalMs)) : 1
  const filled = Math.round(fraction * BAR_WIDTH)
  const bar = '#'.repeat(filled) + '·'.repeat(BAR_WIDTH - filled)
  return `${label} [${bar}] ${(elapsedMs / 1000).toFixed(1)}/${(totalMs / 1000).toFixed(1)} s`
}

export function createProgressLine(options: ProgressOptions): ProgressLine {
  const stream = options.stream ?? process.stderr
  const enabled = stream.isTTY === true && options.json !== true
  let drawn = false
  return {
    enabled,
    update(elapsedMs: number, totalMs: number): void {
      if (!enabled) return
      const width = Math.max(20, (stream.columns ?? 80) - 1)
      // \r returns to column 0, \x1b[K erases the rest of the previous text.
      stream.write(`\r${formatProgress(options.label, elapsedMs, totalMs).slice(0, width)}\x1b[K`)
      drawn = true
    },
    clear(): void {
      if (!enabled || !drawn) return
      stream.write('\r\x1b[K')
      drawn = false
    },
  }
}
