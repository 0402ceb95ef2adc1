// Size strings for flags such as --heap-max: '512MB', '512MiB', '2GB', '1.5G', '800M', '4096KB', or bytes.
// Binary units (1 MB = 1 MiB = 1024 × 1024 bytes), the unit V8 and /proc/meminfo use and the one src/units.ts
// prints (as KiB/MiB/GiB), so a size ferrydiag prints can be passed back. Anything else is badArgument.

import {FerrydiagError} from '../errors.js'
import {GIB, KIB, MIB} from '../units.js'

const BYTES_PER_UNIT: Record<string, number> = {'': 1, k: KIB, m: MIB, g: GIB, t: GIB * KIB}

/** Parses a positive size into bytes. Throws FerrydiagError badArgument. */
export function parseSize(text: string, flag: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])i?b?|b?)\s*$/i.exec(text)
  const bytes = match ? Math.round(Number(match[1]) * BYTES_PER_UNIT[(match[2] ?? '').toLowerCase()]) : Number.NaN
  if (!(bytes > 0) || !Number.isSafeInteger(bytes)) {
    throw new FerrydiagError('badArgument', `Expected ${flag} as a positive size like 512MB or 2GB, got \`${text}\`.`, `Pass e.g. ${flag} 2GB.`)
  }
  return bytes
}
