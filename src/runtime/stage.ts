// Stage: busy / idle / back-pressured time accounting for the code around a buffer (Flink's model), plus
// progress (items, newest source timestamp, input position) and batch-write samples for the cost model.
import type {AgentApi, AgentStageRec} from '../agent/agent-core.cjs'
import type {BinlogPosition, StageState} from '../model/snapshot.js'
import {getAgent} from './agent-link.js'

const STATES: ReadonlySet<string> = new Set(['busy', 'idle', 'back-pressured'])

let readRecord: (stage: Stage) => AgentStageRec

/** The agent's record behind a stage (runtime-internal: channels use it as the waiter identity). */
export function stageRecordOf(stage: Stage): AgentStageRec {
  return readRecord(stage)
}

export class Stage {
  readonly name: string
  readonly #agent: AgentApi
  readonly #rec: AgentStageRec

  static {
    readRecord = (stage) => stage.#rec
  }

  constructor(name: string) {
    if (typeof name !== 'string' || name === '') {
      throw new TypeError(`Expected \`name\` to be a non-empty string, got \`${String(name)}\` (${typeof name})`)
    }
    this.name = name
    this.#agent = getAgent()
    this.#rec = this.#agent.registerStage(this, name)
  }

  get state(): StageState {
    return this.#rec.state
  }

  /**
   * Enters a state; the returned function leaves it (idempotent). Entries nest like a stack, but one may
   * end out of order (interleaved async work): the newest entry still active decides the state, 'idle'
   * when none is. Time spent is accounted at each change and, for the current state, at snapshot time.
   */
  enter(state: StageState): () => void {
    if (!STATES.has(state)) {
      throw new RangeError(`Expected \`state\` to be 'busy', 'idle' or 'back-pressured', got \`${String(state)}\` (${typeof state})`)
    }
    const agent = this.#agent
    const rec = this.#rec
    const token = agent.stagePush(rec, state)
    let left = false
    return () => {
      if (left) return
      left = true
      agent.stagePop(rec, token)
    }
  }

  /** Runs fn with the stage 'busy'; the previous state returns when fn settles (also on failure). */
  async busy<R>(fn: () => Promise<R> | R): Promise<R> {
    const leave = this.enter('busy')
    try {
      return await fn()
    } finally {
      leave()
    }
  }

  /** Reports items handled (default 1), the newest item's source timestamp (epoch ms) and input position. */
  progress(p: {items?: number; itemTimestampMs?: number; position?: BinlogPosition} = {}): void {
    const items = p.items ?? 1
    if (!Number.isFinite(items) || items < 0) {
      throw new RangeError(`Expected \`items\` to be a finite number >= 0, got \`${String(items)}\` (${typeof items})`)
    }
    if (p.itemTimestampMs !== undefined && !Number.isFinite(p.itemTimestampMs)) {
      throw new RangeError(`Expected \`itemTimestampMs\` to be a finite number, got \`${String(p.itemTimestampMs)}\``)
    }
    const pos = p.position
    if (pos !== undefined && (typeof pos.file !== 'string' || !Number.isFinite(pos.offset))) {
      throw new TypeError(`Expected \`position\` to be {file: string, offset: number}, got ${JSON.stringify(pos)}`)
    }
    this.#agent.stageProgress(this.#rec, items, p.itemTimestampMs, pos)
  }

  /** One batch write: events in it, milliseconds it took, whether it succeeded. */
  recordBatch(sample: {events: number; ms: number; ok: boolean}): void {
    const {events, ms, ok} = sample
    if (!Number.isFinite(events) || events < 0) {
      throw new RangeError(`Expected \`events\` to be a finite number >= 0, got \`${String(events)}\` (${typeof events})`)
    }
    if (!Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`Expected \`ms\` to be a finite number >= 0, got \`${String(ms)}\` (${typeof ms})`)
    }
    this.#agent.recordBatch(this.#rec, events, ms, ok === true)
  }
}
