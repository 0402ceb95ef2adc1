// Findings: what an analysis concludes, with the evidence behind it. Shared by stacks, lag and
// tune-batch so that --json consumers see one shape.

import type {HolderInfo} from './snapshot.js'

export type Severity = 'error' | 'warning' | 'info'

export type FindingKind =
  | 'uninitialized-channel-send'
  | 'never-resumes'
  | 'deadlock'
  | 'long-wait'
  | 'back-pressure'
  | 'not-measured'
  | 'stalled-stream-write'
  | (string & {})

export interface FindingEvidence {
  /** Await sites as "file:line:col" strings, innermost first. */
  sites?: string[]
  channels?: string[]
  taskIds?: number[]
  /** Longest wait among the tasks (ms); absent when their ages are unknown. */
  waitMs?: number
  /** Heap route: what holds the awaited promise's resolver. */
  resolver?: HolderInfo
  [key: string]: unknown
}

export interface Finding {
  kind: FindingKind
  severity: Severity
  summary: string
  evidence: FindingEvidence
  suggestion: string
}
