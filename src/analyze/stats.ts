// Small numerical toolkit for the analyses: order statistics, least-squares slope, Student t and
// normal quantiles (for confidence intervals), and a deterministic pseudo-random source for subsampling.

/** Arithmetic mean; NaN for an empty list. */
export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  let sum = 0
  for (const v of values) sum += v
  return sum / values.length
}

/** Sample standard deviation (n − 1 denominator); 0 for fewer than two values. */
export function standardDeviation(values: readonly number[]): number {
  if (values.length < 2) return 0
  const m = mean(values)
  let ss = 0
  for (const v of values) ss += (v - m) * (v - m)
  return Math.sqrt(ss / (values.length - 1))
}

/** Quantile q in [0, 1] of ALREADY SORTED values, linear interpolation between order statistics. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length
  if (n === 0) return Number.NaN
  if (n === 1) return sorted[0]
  const h = (n - 1) * Math.min(1, Math.max(0, q))
  const lo = Math.floor(h)
  const hi = Math.min(n - 1, lo + 1)
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo])
}

/** Quantile of unsorted values (copies, does not reorder the input). */
export function quantile(values: readonly number[], q: number): number {
  const sorted = Float64Array.from(values).sort()
  return quantileSorted(sorted, q)
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5)
}

/**
 * Least-squares slope of y against x (units of y per unit of x); null when fewer than two points or
 * all x equal. Used for lag growth (ms of lag per ms of wall time = s per s).
 */
export function leastSquaresSlope(xs: readonly number[], ys: readonly number[]): number | null {
  const n = Math.min(xs.length, ys.length)
  if (n < 2) return null
  let mx = 0
  let my = 0
  for (let i = 0; i < n; i++) {
    mx += xs[i]
    my += ys[i]
  }
  mx /= n
  my /= n
  let sxx = 0
  let sxy = 0
  for (let i = 0; i < n; i++) {
    sxx += (xs[i] - mx) * (xs[i] - mx)
    sxy += (xs[i] - mx) * (ys[i] - my)
  }
  if (sxx === 0) return null
  return sxy / sxx
}

/**
 * Deterministic 32-bit generator (mulberry32 construction), uniform in [0, 1). Analyses use it only
 * to subsample reproducibly: the same input always gives the same answer.
 */
export function createUniformSource(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let z = state
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296
  }
}

// ---- special functions -------------------------------------------------------------------------

/**
 * ln Γ(x) for x > 0: shift x up to ≥ 8 with Γ(x+1) = xΓ(x), then Stirling's series to the x⁻⁹ term
 * (relative error below 1e-13 there).
 */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`Expected logGamma argument > 0, got ${x}`)
  let shift = 0
  let z = x
  while (z < 8) {
    shift += Math.log(z)
    z += 1
  }
  const inv = 1 / z
  const inv2 = inv * inv
  const series =
    inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 * (1 / 1680 - inv2 * (1 / 1188)))))
  return (z - 0.5) * Math.log(z) - z + 0.5 * Math.log(2 * Math.PI) + series - shift
}

/**
 * Continued fraction for the regularized incomplete beta, evaluated with the modified Lentz method.
 * Converges quickly when x < (a + 1) / (a + b + 2); the caller swaps arguments otherwise.
 */
function incompleteBetaFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300
  let c = 1
  let d = 1 - ((a + b) * x) / (a + 1)
  if (Math.abs(d) < tiny) d = tiny
  d = 1 / d
  let result = d
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m
    // even step: m(b − m)x / ((a + 2m − 1)(a + 2m))
    let coeff = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2))
    d = 1 + coeff * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + coeff / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    result *= d * c
    // odd step: −(a + m)(a + b + m)x / ((a + 2m)(a + 2m + 1))
    coeff = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1))
    d = 1 + coeff * d
    if (Math.abs(d) < tiny) d = tiny
    c = 1 + coeff / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    const delta = d * c
    result *= delta
    if (Math.abs(delta - 1) < 1e-15) break
  }
  return result
}

/** Regularized incomplete beta I_x(a, b), for a, b > 0 and x in [0, 1]. */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0
  if (x >= 1) return 1
  const logFront =
    a * Math.log(x) + b * Math.log1p(-x) - (logGamma(a) + logGamma(b) - logGamma(a + b))
  if (x < (a + 1) / (a + b + 2)) {
    return (Math.exp(logFront) * incompleteBetaFraction(x, a, b)) / a
  }
  return 1 - (Math.exp(logFront) * incompleteBetaFraction(1 - x, b, a)) / b
}

/** Regularized lower incomplete gamma P(a, x): series below a + 1, continued fraction above. */
function regularizedLowerGamma(a: number, x: number): number {
  if (x <= 0) return 0
  const logFront = a * Math.log(x) - x - logGamma(a)
  if (x < a + 1) {
    let term = 1 / a
    let sum = term
    for (let k = 1; k < 1000; k++) {
      term *= x / (a + k)
      sum += term
      if (Math.abs(term) < Math.abs(sum) * 1e-16) break
    }
    return sum * Math.exp(logFront)
  }
  // Upper tail Q(a, x) by Lentz on the continued fraction 1/(x+1−a− 1·(1−a)/(x+3−a− ...)).
  const tiny = 1e-300
  let b = x + 1 - a
  let c = 1 / tiny
  let d = 1 / b
  let h = d
  for (let i = 1; i < 1000; i++) {
    const an = -i * (i - a)
    b += 2
    d = an * d + b
    if (Math.abs(d) < tiny) d = tiny
    c = b + an / c
    if (Math.abs(c) < tiny) c = tiny
    d = 1 / d
    const delta = d * c
    h *= delta
    if (Math.abs(delta - 1) < 1e-16) break
  }
  return 1 - Math.exp(logFront) * h
}

/** Standard normal CDF Φ(z), via Φ(z) = (1 + P(1/2, z²/2)) / 2 for z ≥ 0. */
export function normalCdf(z: number): number {
  if (Number.isNaN(z)) return Number.NaN
  const half = 0.5 * regularizedLowerGamma(0.5, (z * z) / 2)
  return z >= 0 ? 0.5 + half : 0.5 - half
}

/** Standard normal quantile: a rational first guess (error < 5e-4) polished by Newton steps. */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity
    if (p === 1) return Infinity
    throw new RangeError(`Expected a probability in [0, 1], got ${p}`)
  }
  if (p === 0.5) return 0
  if (p < 0.5) return -normalQuantile(1 - p)
  const tail = 1 - p
  const t = Math.sqrt(-2 * Math.log(tail))
  let z =
    t -
    (2.515517 + 0.802853 * t + 0.010328 * t * t) /
      (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t)
  for (let i = 0; i < 4; i++) {
    const density = Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI)
    if (density === 0) break
    const step = (normalCdf(z) - p) / density
    z -= step
    if (Math.abs(step) < 1e-14 * Math.max(1, Math.abs(z))) break
  }
  return z
}

/** Student t CDF with df > 0 degrees of freedom. */
export function studentTCdf(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`Expected degrees of freedom > 0, got ${df}`)
  if (!Number.isFinite(df)) return normalCdf(t)
  const x = df / (df + t * t)
  const tail = 0.5 * regularizedIncompleteBeta(x, df / 2, 0.5)
  return t >= 0 ? 1 - tail : tail
}

function studentTDensity(t: number, df: number): number {
  const logC = logGamma((df + 1) / 2) - logGamma(df / 2) - 0.5 * Math.log(df * Math.PI)
  return Math.exp(logC - ((df + 1) / 2) * Math.log1p((t * t) / df))
}

/**
 * Student t quantile: closed forms for df 1 and 2; for df > 1e5 the Cornish–Fisher expansion around
 * the normal quantile (error far below 1e-9 there); otherwise Newton on the CDF, started from that
 * expansion and guarded by bisection.
 */
export function studentTQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1)) throw new RangeError(`Expected a probability in (0, 1), got ${p}`)
  if (!(df > 0)) throw new RangeError(`Expected degrees of freedom > 0, got ${df}`)
  if (p < 0.5) return -studentTQuantile(1 - p, df)
  if (p === 0.5) return 0
  if (df === 1) return Math.tan(Math.PI * (p - 0.5))
  if (df === 2) return (2 * p - 1) / Math.sqrt(2 * p * (1 - p))
  const z = normalQuantile(p)
  if (!Number.isFinite(df)) return z
  const z2 = z * z
  const g1 = (z * (z2 + 1)) / 4
  const g2 = (z * ((5 * z2 + 16) * z2 + 3)) / 96
  const g3 = (z * (((3 * z2 + 19) * z2 + 17) * z2 - 15)) / 384
  const g4 = (z * ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945)) / 92160
  const expansion = z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4
  if (df > 1e5) return expansion
  // Bracket [lo, hi] with CDF(lo) < p < CDF(hi); the expansion overshoots for tiny df, so start safe.
  let lo = 0
  let hi = Math.max(1, expansion * 2)
  while (studentTCdf(hi, df) < p) hi *= 2
  let t = Number.isFinite(expansion) && expansion > lo && expansion < hi ? expansion : (lo + hi) / 2
  for (let i = 0; i < 200; i++) {
    const f = studentTCdf(t, df) - p
    if (f > 0) hi = t
    else lo = t
    const density = studentTDensity(t, df)
    let next = density > 0 ? t - f / density : Number.NaN
    if (!(next > lo && next < hi)) next = (lo + hi) / 2
    if (Math.abs(next - t) <= 1e-13 * Math.max(1, Math.abs(t))) return next
    t = next
  }
  return t
}
