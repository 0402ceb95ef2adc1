// ferrydiag/runtime: instrumented building blocks for migration pipelines (channels, slots, stages,
// stream adapter) and the sources, settings and counters they expose to `ferrydiag` through the agent.
export {Channel, ChannelClosedError, type ReceiveResult, type WaitOptions} from './channel.js'
export {ChannelSlot} from './channel-slot.js'
export {Stage} from './stage.js'
export {registerSource, registerSetting, counter} from './registry.js'
export {instrumentWritable, type InstrumentedWritable} from './stream-adapter.js'
