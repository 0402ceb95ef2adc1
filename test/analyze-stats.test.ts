// Tests for the numerical helpers behind the confidence intervals: t and normal quantiles, medians, slopes.
import {test} from 'node:test'
import assert from 'node:assert/strict'
import {
  leastSquaresSlope,
  logGamma,
  median,
  normalCdf,
  normalQuantile,
  quantile,
  regularizedIncompleteBeta,
  studentTCdf,
  studentTQuantile,
} from '../src/analyze/stats.js'

const close = (actual: number, expected: number, tolerance: number, label = '') =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${label} expected ${expected} ± ${tolerance}, got ${actual}`)

test('t quantiles match published tables', () => {
  close(studentTQuantile(0.975, 10), 2.228139, 1e-6, 'df 10')
  close(studentTQuantile(0.975, 1), 12.706205, 1e-6, 'df 1')
  close(studentTQuantile(0.975, 2), 4.302653, 1e-6, 'df 2')
  close(studentTQuantile(0.975, 3), 3.182446, 1e-6, 'df 3')
  close(studentTQuantile(0.975, 30), 2.042272, 1e-6, 'df 30')
  close(studentTQuantile(0.995, 5), 4.032143, 1e-6, 'p .995 df 5')
  close(studentTQuantile(0.9, 4), 1.533206, 1e-6, 'p .9 df 4')
  close(studentTQuantile(0.999, 3), 10.214532, 1e-5, 'p .999 df 3')
  close(studentTQuantile(0.975, 120), 1.979930, 1e-6, 'df 120')
})

test('t quantile tends to the normal quantile for large df', () => {
  close(studentTQuantile(0.975, 1e6), 1.959966, 1e-6, 'df 1e6')
  close(studentTQuantile(0.975, Infinity), 1.959964, 1e-6, 'df ∞')
  // Around the switch to the expansion at df 1e5 the two methods agree.
  close(studentTQuantile(0.975, 99_999), studentTQuantile(0.975, 100_001), 1e-8, 'continuity')
})

test('t quantile is antisymmetric and inverts the CDF', () => {
  for (const df of [1.5, 4, 17, 250]) {
    for (const p of [0.01, 0.2, 0.6, 0.99]) {
      const t = studentTQuantile(p, df)
      close(studentTCdf(t, df), p, 1e-10, `cdf(q(${p}, ${df}))`)
      close(studentTQuantile(1 - p, df), -t, 1e-9, 'symmetry')
    }
  }
  assert.equal(studentTQuantile(0.5, 7), 0)
})

test('t quantile rejects bad arguments', () => {
  assert.throws(() => studentTQuantile(1, 5), RangeError)
  assert.throws(() => studentTQuantile(0.5, 0), RangeError)
  assert.throws(() => studentTQuantile(Number.NaN, 5), RangeError)
})

test('normal quantile and CDF', () => {
  close(normalQuantile(0.975), 1.959964, 1e-6)
  close(normalQuantile(0.841344746), 1, 1e-6)
  close(normalQuantile(1e-10), -6.361341, 1e-5)
  close(normalCdf(1.959964), 0.975, 1e-6)
  close(normalCdf(-3), 0.0013499, 1e-7)
  assert.equal(normalQuantile(0.5), 0)
})

test('logGamma and the incomplete beta on known values', () => {
  close(logGamma(0.5), Math.log(Math.sqrt(Math.PI)), 1e-12)
  close(logGamma(10), Math.log(362880), 1e-12)
  close(logGamma(100), 359.1342053695754, 1e-9)
  close(regularizedIncompleteBeta(0.5, 2, 2), 0.5, 1e-12)
  close(regularizedIncompleteBeta(0.3, 1, 1), 0.3, 1e-12)
  close(regularizedIncompleteBeta(0.2, 2, 3), 0.1808, 1e-12)
})

test('median, quantile and least-squares slope', () => {
  assert.equal(median([5, 1, 3]), 3)
  assert.equal(median([4, 1, 3, 2]), 2.5)
  assert.equal(quantile([0, 10], 0.95), 9.5)
  assert.ok(Number.isNaN(median([])))
  assert.equal(leastSquaresSlope([0, 1, 2], [1, 3, 5]), 2)
  assert.equal(leastSquaresSlope([1, 1], [1, 2]), null)
  assert.equal(leastSquaresSlope([1], [1]), null)
})
