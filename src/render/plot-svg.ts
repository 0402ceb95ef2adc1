// An SVG scatter plot of batch write time T (ms) against batch size B (events) with the fitted line and,
// when given, the stability boundary B*. Pure: returns the document as a string; the command writes it.
import {computePlotRange, type PlotLine, type PlotPoint} from './plot-text.js'

export interface SvgPlotOptions {
  title?: string
  /** Marks B* (events) with a dashed vertical line, when finite. */
  stabilityBoundary?: number | null
  /** Marks the recommended B with a dashed vertical line. */
  recommendedBatchSize?: number | null
  width?: number
  height?: number
}

const MARGIN = {left: 64, right: 24, top: 40, bottom: 52}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({'<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;'})[c]!)
}

function fixed(value: number): string {
  return Number(value.toFixed(2)).toString()
}

export function renderSvgPlot(points: readonly PlotPoint[], line: PlotLine | null, options: SvgPlotOptions = {}): string {
  const width = options.width ?? 720
  const height = options.height ?? 420
  const plotW = width - MARGIN.left - MARGIN.right
  const plotH = height - MARGIN.top - MARGIN.bottom
  let {xMax, yMax} = computePlotRange(points, line)
  for (const mark of [options.stabilityBoundary, options.recommendedBatchSize]) {
    if (typeof mark === 'number' && Number.isFinite(mark) && mark > xMax) {
      xMax = mark * 1.1
      if (line) yMax = Math.max(yMax, (line.intercept + line.slope * xMax) * 1.05)
    }
  }
  const sx = (x: number): number => MARGIN.left + (x / xMax) * plotW
  const sy = (y: number): number => MARGIN.top + plotH - (y / yMax) * plotH
  const parts: string[] = []
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`)
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`)
  if (options.title) parts.push(`<text x="${width / 2}" y="22" text-anchor="middle" font-size="14">${escapeXml(options.title)}</text>`)
  // Axes with five ticks each.
  parts.push(`<line x1="${MARGIN.left}" y1="${MARGIN.top + plotH}" x2="${MARGIN.left + plotW}" y2="${MARGIN.top + plotH}" stroke="black"/>`)
  parts.push(`<line x1="${MARGIN.left}" y1="${MARGIN.top}" x2="${MARGIN.left}" y2="${MARGIN.top + plotH}" stroke="black"/>`)
  for (let i = 0; i <= 5; i++) {
    const xv = (xMax * i) / 5
    const yv = (yMax * i) / 5
    parts.push(`<text x="${fixed(sx(xv))}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${Number(xv.toPrecision(3))}</text>`)
    parts.push(`<text x="${MARGIN.left - 6}" y="${fixed(sy(yv) + 4)}" text-anchor="end">${Number(yv.toPrecision(3))}</text>`)
  }
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${height - 12}" text-anchor="middle">B (events per batch)</text>`)
  parts.push(`<text x="16" y="${MARGIN.top + plotH / 2}" text-anchor="middle" transform="rotate(-90 16 ${MARGIN.top + plotH / 2})">T (ms per batch write)</text>`)
  parts.push('<g fill="#1f77b4" fill-opacity="0.5">')
  for (const p of points) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) continue
    parts.push(`<circle cx="${fixed(sx(p.x))}" cy="${fixed(sy(Math.min(p.y, yMax)))}" r="2.5"/>`)
  }
  parts.push('</g>')
  if (line) {
    const y0 = line.intercept
    const y1 = line.intercept + line.slope * xMax
    parts.push(
      `<line x1="${fixed(sx(0))}" y1="${fixed(sy(y0))}" x2="${fixed(sx(xMax))}" y2="${fixed(sy(y1))}" stroke="#d62728" stroke-width="2"/>`,
    )
    parts.push(
      `<text x="${MARGIN.left + 8}" y="${MARGIN.top + 14}" fill="#d62728">${escapeXml(`T = ${Number(line.slope.toPrecision(3))} ms × B + ${Number(line.intercept.toPrecision(3))} ms`)}</text>`,
    )
  }
  const marks: Array<[number | null | undefined, string, string]> = [
    [options.stabilityBoundary, 'B*', '#ff7f0e'],
    [options.recommendedBatchSize, 'recommended', '#2ca02c'],
  ]
  for (const [value, label, colour] of marks) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) continue
    const x = fixed(sx(value))
    parts.push(`<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${MARGIN.top + plotH}" stroke="${colour}" stroke-dasharray="5,4"/>`)
    parts.push(`<text x="${x}" y="${MARGIN.top - 4}" text-anchor="middle" fill="${colour}">${escapeXml(`${label} = ${Number(value.toPrecision(3))}`)}</text>`)
  }
  parts.push('</svg>')
  return `${parts.join('\n')}\n`
}
