// Builds the JavaScript expression the CLI evaluates in a target over the inspector to install the agent
// there (agentLoadedBy 'inject'). The expression returns a short JSON status string.
import type {AgentMode} from '../model/snapshot.js'
import {installAgent} from './agent-core.cjs'

/**
 * `globalThis[Symbol.for(AGENT_INJECTION_KEY)] = {cliPid, atMs}`: which ferrydiag CLI injected the agent,
 * and when (ms since the epoch). Written only by the injection that installed the agent, and left with
 * it after detach, so a later run can say truthfully that an earlier run injected it.
 */
export const AGENT_INJECTION_KEY = 'ferrydiag.agent.injection'

/** The record behind AGENT_INJECTION_KEY. */
export interface AgentInjectionRecord {
  cliPid: number
  atMs: number
}

/** What the injection expression returns, JSON-encoded. */
export interface AgentInjectionStatus {
  /** False when an agent was already present (preloaded, imported or injected before). */
  installed: boolean
  agentVersion: string
  apiVersion: number
  mode: AgentMode
  loadedBy: 'preload' | 'import' | 'inject'
  pid: number
}

/**
 * An expression that installs the agent idempotently in the process that evaluates it. With mode
 * 'await-times' an already present agent is switched to that mode too; without a mode the target's
 * FERRYDIAG_AGENT_MODE decides (default 'channels'). Waits that began before injection are not seen.
 * `cliPid` (the injecting CLI's pid) is recorded with the time under AGENT_INJECTION_KEY.
 */
export function agentInjectionExpression(opts: {mode?: AgentMode; cliPid?: number} = {}): string {
  const mode = opts.mode
  if (mode !== undefined && mode !== 'channels' && mode !== 'await-times') {
    throw new RangeError(`Expected \`mode\` to be 'channels' or 'await-times', got \`${String(mode)}\` (${typeof mode})`)
  }
  return `(() => {
  const key = Symbol.for('ferrydiag.agent');
  const present = globalThis[key] !== undefined;
  const install = (${installAgent.toString()});
  const agent = install({loadedBy: 'inject', mode: ${JSON.stringify(mode ?? null)}});
  if (!present) globalThis[Symbol.for(${JSON.stringify(AGENT_INJECTION_KEY)})] = {cliPid: ${Number(opts.cliPid ?? 0)}, atMs: agent.startedAtMs};
  return JSON.stringify({installed: !present, agentVersion: agent.agentVersion, apiVersion: agent.apiVersion,
    mode: agent.mode, loadedBy: agent.loadedBy, pid: globalThis.process ? globalThis.process.pid : 0});
})()`
}
