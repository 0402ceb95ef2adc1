// Preload entry for ESM: `node --import ferrydiag/register app.js` installs the agent before the app
// runs, so every channel and wait is recorded from the first line (agentLoadedBy 'preload').
import {installAgent} from './agent-core.cjs'

installAgent({loadedBy: 'preload'})
