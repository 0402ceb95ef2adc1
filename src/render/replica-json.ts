// --json for `ferrydiag replica`: the ReplicaReport (schema "ferrydiag.replica", version 1) with plain
// JSON.stringify; row values that JSON cannot hold are written as strings (binary as 0x hex, bigint as
// decimal).

import type {ReplicaReport} from '../model/replica.js'

function replacer(this: unknown, _key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  // Buffer.toJSON runs before the replacer sees the value: turn {type:'Buffer', data} into hex.
  if (value !== null && typeof value === 'object' && (value as {type?: unknown}).type === 'Buffer' && Array.isArray((value as {data?: unknown}).data)) {
    return `0x${Buffer.from((value as {data: number[]}).data).toString('hex')}`
  }
  return value
}

export function renderReplicaJson(report: ReplicaReport): string {
  return `${JSON.stringify(report, replacer, 2)}\n`
}
