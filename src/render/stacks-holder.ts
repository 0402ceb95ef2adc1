// Words for what holds a heap-route task's awaited promise (HolderInfo is data; this is its wording).

import type {HolderInfo} from '../model/snapshot.js'

/** "array 'waiting' of Pool", "Timeout (setTimeout/setInterval)", "listener for 'drain' on Writable", … */
export function describeHolder(holder: HolderInfo): string {
  const text = describeKind(holder)
  return holder.throughPromise ? `${text} (through a promise that settles this one)` : text
}

function named(holder: HolderInfo): string {
  return holder.channelName === undefined ? '' : ` '${holder.channelName}'`
}

function via(holder: HolderInfo): string {
  return holder.variable === undefined ? '' : ` (via variable '${holder.variable}' of closure ${holder.closure ?? '(anonymous)'})`
}

function describeKind(holder: HolderInfo): string {
  switch (holder.kind) {
    case 'channel-queue':
      return `wait list '${holder.queueProperty ?? '?'}' of ${holder.objectClass ?? 'an object'}${named(holder)}${via(holder)}`
    case 'timer':
      return `Timeout (setTimeout/setInterval)${via(holder)}`
    case 'event-listener':
      return `listener for '${holder.eventName ?? '?'}' on ${holder.objectClass ?? 'an emitter'}${via(holder)}`
    case 'object':
      return `property ${holder.path ?? '?'} of ${holder.objectClass ?? 'an object'}${named(holder)}`
    case 'task-locals':
      return `locals of suspended async function ${holder.functionName ?? '(anonymous)'}${holder.path ? ` (${holder.path})` : ''}`
    case 'closure-variable':
      return `variable '${holder.variable ?? '?'}' captured by closure ${holder.closure ?? '(anonymous)'}${holder.objectClass ? ` of ${holder.path ?? holder.objectClass}` : ''}`
    case 'promise-reaction':
      return 'settles after another promise (then/Promise combinator)'
    case 'async-function':
      return `settles after async function ${holder.functionName ?? '(anonymous)'}`
    case 'root':
      return `held from GC root ${holder.objectClass ?? '(root)'}`
    case 'native':
      return `settled by native code (${holder.objectClass ?? 'a native handle'} owns the promise)`
    case 'waiting-task-only':
      return `nothing reachable from the GC roots holds its resolve function${holder.functionName ? `; only the waiting task does (locals of ${holder.functionName}${holder.path ? `: ${holder.path}` : ''})` : ''}`
    case 'no-resolver': {
      const kept = holder.path ?? holder.objectClass
      return `no resolve function in the heap and no native owner${kept ? `; the promise itself is only stored, in ${kept}` : ''}`
    }
    case 'unknown':
      if (holder.detail === 'through-tasks') return 'its resolver is reachable only through other suspended tasks'
      if (holder.detail === 'not-recognised') return 'awaited value not recognised in the snapshot'
      return 'held through internal structures only'
  }
}
