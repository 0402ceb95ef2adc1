// Size strings for flags such as --heap-max: '512MB', '2GB', '1.5G', '800M', '4096KB', or bytes. Binary
// units (1 MB = 1024 × 1024 bytes), the unit V8 and /proc/meminfo use. Anything else is badArgument.

import {FerrydiagError} from '../errors.js'

const BYTES_PER_UNIT: Record<string, number> = {'': 1, b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4}

/** Parses a positive size into bytes. Throws FerrydiagError badArgument. */
export function parseSize(text: string, flag: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?b?)\s*$/i.exec(text)
  const bytes = match ? Math.round(Number(match[1]) * BYTES_PER_UNIT[match[2].toLowerCase()]) : Number.NaN
  if (!(bytes > 0) || !Number.isSafeInteger(bytes)) {
    throw new FerrydiagError('badArgument', `Expected ${flag} as a positive size like 512MB or 2GB, got \`${text}\`.`, `Pass e.g. ${flag} 2GB.`)
  }
  return bytes
}
