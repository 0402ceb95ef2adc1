// The attach side of ferrydiag in one import: resolve a target, open a session, evaluate, detach.

export {connectInspector, fetchInspectorTargets, formatHostPort, type InspectorListEntry} from './connect.js'
export {
  attachTarget,
  type AttachOptions,
  DEFAULT_EVALUATE_BUDGET_MS,
  type DetachResult,
  type EnsureAgentResult,
  type EvaluateOptions,
  InspectorSession,
  TargetEvaluationError,
} from './session.js'
export {
  DEFAULT_INSPECT_HOST,
  DEFAULT_INSPECT_PORT,
  isLoopbackHost,
  parseInspectAddress,
  resolveTarget,
  type ResolvedTarget,
  type ResolveTargetOptions,
} from './target.js'
