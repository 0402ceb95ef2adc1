// Kept for existing imports: durations are formatted by src/units.ts, the one units module.
export {formatDurationMs, formatDurationRangeMs} from '../units.js'
