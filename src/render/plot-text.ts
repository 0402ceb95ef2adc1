// A terminal scatter plot of batch write time T (ms) against batch size B (events) with the fitted line
// T = m·B + o drawn through it. Pure and deterministic: the same points give the same characters.

export interface PlotPoint {
  /** Batch size, events. */
  x: number
  /** Write time, ms. */
  y: number
}

export interface PlotLine {
  /** Slope, ms per event. */
  slope: number
  /** Intercept, ms. */
  intercept: number
}

export interface TextPlotOptions {
  /** Plot area in characters (axes and labels come on top). Defaults 60 × 14. */
  width?: number
  height?: number
  xLabel?: string
  yLabel?: string
}

/**
 * Axis range used by both plots: from 0 to a little above the data, so o shows as an offset. The T axis
 * stops at the 98th percentile of T (or the fitted line's end, if higher), so a few stalled writes do
 * not squash everything else; points above it are drawn on the top row (text: '^').
 */
export function computePlotRange(points: readonly PlotPoint[], line: PlotLine | null): {xMax: number; yMax: number} {
  let xMax = 1
  const ys: number[] = []
  for (const p of points) {
    if (Number.isFinite(p.x)) xMax = Math.max(xMax, p.x)
    if (Number.isFinite(p.y)) ys.push(p.y)
  }
  ys.sort((a, b) => a - b)
  let yMax = ys.length > 0 ? ys[Math.min(ys.length - 1, Math.floor(0.98 * (ys.length - 1)))] : 1
  if (line) yMax = Math.max(yMax, line.intercept + line.slope * xMax)
  return {xMax: niceCeiling(xMax), yMax: niceCeiling(Math.max(yMax, 1e-9) * 1.05)}
}

/** The smallest 1, 2, 2.5 or 5 × 10^k at or above value. */
export function niceCeiling(value: number): number {
  if (!(value > 0)) return 1
  const power = 10 ** Math.floor(Math.log10(value))
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value - 1e-12) return step * power
  return 10 * power
}

/**
 * Renders the plot as lines of text. Points: '·' for one sample in a cell, '•' for 2–9, '#' for 10 or
 * more, '^' for samples above the axis; the fitted line is '-' (points drawn over it). Returns one string ending without a newline.
 */
export function renderTextPlot(points: readonly PlotPoint[], line: PlotLine | null, options: TextPlotOptions = {}): string {
  const width = Math.max(10, Math.floor(options.width ?? 60))
  const height = Math.max(4, Math.floor(options.height ?? 14))
  const {xMax, yMax} = computePlotRange(points, line)
  const grid: string[][] = Array.from({length: height}, () => new Array<string>(width).fill(' '))
  const column = (x: number): number => Math.min(width - 1, Math.max(0, Math.round((x / xMax) * (width - 1))))
  const row = (y: number): number => height - 1 - Math.min(height - 1, Math.max(0, Math.round((y / yMax) * (height - 1))))
  if (line) {
    for (let c = 0; c < width; c++) {
      const y = line.intercept + line.slope * ((c / (width - 1)) * xMax)
      if (y >= 0 && y <= yMax) grid[row(y)][c] = '-'
    }
  }
  const counts = new Map<number, number>()
  const clipped = new Set<number>()
  for (const p of points) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) continue
    if (p.y > yMax) {
      clipped.add(column(p.x))
      continue
    }
    const key = row(p.y) * width + column(p.x)
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  for (const [key, count] of counts) {
    grid[Math.floor(key / width)][key % width] = count >= 10 ? '#' : count >= 2 ? '•' : '·'
  }
  for (const c of clipped) grid[0][c] = '^'
  const yTop = formatTick(yMax)
  const yMid = formatTick(yMax / 2)
  const labelWidth = Math.max(yTop.length, yMid.length, 1)
  const lines: string[] = []
  lines.push(`${' '.repeat(labelWidth)}  ${options.yLabel ?? 'T (ms)'}`)
  for (let r = 0; r < height; r++) {
    const label = r === 0 ? yTop : r === Math.floor((height - 1) / 2) ? yMid : r === height - 1 ? '0' : ''
    lines.push(`${label.padStart(labelWidth)} |${grid[r].join('').trimEnd()}`)
  }
  lines.push(`${' '.repeat(labelWidth)} +${'-'.repeat(width)}`)
  const xMid = formatTick(xMax / 2)
  const xEnd = formatTick(xMax)
  const axis = new Array<string>(width + 1).fill(' ')
  const put = (at: number, text: string): void => {
    for (let i = 0; i < text.length && at + i < axis.length; i++) axis[at + i] = text[i]
  }
  put(0, '0')
  put(Math.max(2, Math.floor(width / 2) - Math.floor(xMid.length / 2)), xMid)
  put(Math.max(0, width + 1 - xEnd.length), xEnd)
  lines.push(`${' '.repeat(labelWidth)}  ${axis.join('').trimEnd()}`)
  lines.push(`${' '.repeat(labelWidth)}  ${(options.xLabel ?? 'B (events per batch)').padStart(Math.floor(width / 2) + 10)}`)
  return lines.join('\n')
}

function formatTick(value: number): string {
  return Number(value.toPrecision(3)).toString()
}
