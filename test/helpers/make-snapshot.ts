// Builders for AgentSnapshot values in tests (complete records with plausible defaults), and loaders
// for the snapshot fixtures and golden files, which live in the source tree rather than under dist/.

import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {SNAPSHOT_SCHEMA, SNAPSHOT_VERSION} from '../../src/model/snapshot.js'
import type {
  AgentSnapshot,
  ChannelRecord,
  ProcessInfo,
  StackFrame,
  StageRecord,
  TaskRecord,
} from '../../src/model/snapshot.js'

/** Repository root: this file compiles to dist/test/helpers/make-snapshot.js. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** Default snapshot time for built snapshots: 2025-02-15T16:17:52Z. */
export const TAKEN_AT_MS = Date.UTC(2025, 1, 15, 16, 17, 52)

/** The recorded/constructed snapshots in fixtures/snapshots/, by file name without `.json`. */
export const SNAPSHOT_FIXTURES = [
  'init-race-placeholder',
  'init-race-slot',
  'collected-while-blocked',
  'healthy',
  'slow-target',
  'deadlock',
] as const
export type SnapshotFixtureName = (typeof SNAPSHOT_FIXTURES)[number]

export function loadSnapshotFixture(name: SnapshotFixtureName): AgentSnapshot {
  return JSON.parse(readFileSync(join(REPO_ROOT, 'fixtures', 'snapshots', `${name}.json`), 'utf8')) as AgentSnapshot
}

export function goldenPath(name: string): string {
  return join(REPO_ROOT, 'fixtures', 'golden', name)
}

/** A frame in the compiled reference pipeline, e.g. frameIn('binlog-streamer', 'BinlogStreamer.run', 88, 24). */
export function frameIn(module: string, functionName: string, line: number, column: number): StackFrame {
  return {functionName, url: `file:///srv/ferry/dist/fixtures/pipeline/${module}.js`, line, column}
}

export function makeProcessInfo(overrides: Partial<ProcessInfo> = {}): ProcessInfo {
  return {
    pid: 48213,
    nodeVersion: 'v20.20.0',
    uptimeSec: 3600,
    argv: ['/usr/bin/node', '--import', 'ferrydiag/register', '/srv/ferry/dist/fixtures/pipeline/main.js'],
    title: 'node',
    agentMode: 'channels',
    agentLoadedBy: 'preload',
    agentVersion: '0.1.0',
    agentStartedAtMs: TAKEN_AT_MS - 3600_000,
    ...overrides,
  }
}

export function makeSnapshot(overrides: Partial<AgentSnapshot> = {}): AgentSnapshot {
  return {
    schema: SNAPSHOT_SCHEMA,
    version: SNAPSHOT_VERSION,
    takenAtMs: TAKEN_AT_MS,
    monotonicMs: 3_600_000,
    process: makeProcessInfo(),
    channels: [],
    tasks: [],
    stages: [],
    samples: {recent: [], reservoir: [], totalCount: 0, totalFailed: 0},
    sources: [],
    settings: [],
    counters: {},
    buildMs: 0.4,
    ...overrides,
  }
}

/** A live, open, empty buffer of capacity 100 that has never been used, unless overridden. */
export function makeChannel(overrides: Partial<ChannelRecord> & Pick<ChannelRecord, 'id' | 'name'>): ChannelRecord {
  const {id, name, ...rest} = overrides
  return {
    id,
    name,
    kind: 'channel',
    capacity: 100,
    length: 0,
    closed: false,
    collected: false,
    createdAtMs: TAKEN_AT_MS - 3600_000,
    itemsIn: 0,
    itemsOut: 0,
    sendersEver: 0,
    receiversEver: 0,
    blockedSenders: 0,
    blockedReceivers: 0,
    sendBlockedMs: 0,
    receiveBlockedMs: 0,
    fullMs: 0,
    fillItemMs: 0,
    ...rest,
  }
}

/** A blocked task; sinceMs follows from waitMs and `takenAtMs` (default TAKEN_AT_MS). */
export function makeTask(
  overrides: Partial<TaskRecord> & Pick<TaskRecord, 'id' | 'kind'>,
  takenAtMs = TAKEN_AT_MS,
): TaskRecord {
  const {id, kind, ...rest} = overrides
  const waitMs = rest.waitMs ?? 100
  return {id, kind, state: 'blocked', stack: [], sinceMs: takenAtMs - waitMs, waitMs, ...rest}
}

/** An idle stage created an hour before the snapshot, in its current state for `forMs` (default 1 s). */
export function makeStage(
  overrides: Partial<StageRecord> & Pick<StageRecord, 'name'> & {forMs?: number},
  takenAtMs = TAKEN_AT_MS,
): StageRecord {
  const {forMs = 1000, name, ...rest} = overrides
  return {
    name,
    state: 'idle',
    stateSinceMs: takenAtMs - forMs,
    busyMs: 0,
    idleMs: 0,
    backPressuredMs: 0,
    createdAtMs: takenAtMs - 3600_000,
    itemsHandled: 0,
    lastProgressAtMs: null,
    lastItemTimestampMs: null,
    position: null,
    ...rest,
  }
}
