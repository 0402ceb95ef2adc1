// Preload entry for CommonJS: `node --require ferrydiag/register app.cjs` (compiles to register.cjs)
// installs the agent before the app runs (agentLoadedBy 'preload').
import {installAgent} from './agent-core.cjs'

installAgent({loadedBy: 'preload'})
