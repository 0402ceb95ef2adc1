// Findings: what an analysis concludes, with the evidence behind it. Shared by stacks, lag and
// tune-batch so that --json consumers see one shape.

export type Severity = 'error' | 'warning' | 'info'

export type FindingKind =
  | 'uninitialized-channel-send'
  | 'never-resumes'
  | 'deadlock'
  | 'long-wait'
  | 'back-pressure'
  | 'not-measured'
  | (string & {})

export interface FindingEvidence {
  /** Await sites as "file:line:col" strings, innermost first. */
  sites?: string[]
  channels?: string[]
  taskIds?: number[]
  waitMs?: number
  [key: string]: unknown
}

export interface Finding {
  kind: FindingKind
  severity: Severity
  summary: string
  evidence: FindingEvidence
  suggestion: string
}
