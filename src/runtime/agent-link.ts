// The runtime's only way to the agent: the process-wide registry under Symbol.for('ferrydiag.agent'),
// installed here on first use (agentLoadedBy 'import') unless a loader or another ferrydiag copy did.
import {fileURLToPath} from 'node:url'
import {installAgent, type AgentApi} from '../agent/agent-core.cjs'

let linked: AgentApi | undefined

/** The shared agent; registers this runtime's files so their frames are cut from await sites. */
export function getAgent(): AgentApi {
  if (linked === undefined) {
    const agent = installAgent({loadedBy: 'import'})
    const dirUrl = new URL('.', import.meta.url)
    agent.addOwnFrames(dirUrl.href)
    agent.addOwnFrames(fileURLToPath(dirUrl))
    linked = agent
  }
  return linked
}
