// `ferrydiag stacks`: a goroutine-style dump of a running Node pipeline's pending waits, naming the task
// that can never resume. Attach, read (agent or heap snapshot), render, detach: the target keeps running.

import {Flags} from '@oclif/core'

import {DEFAULT_STUCK_AFTER_MS} from '../src/analyze/stacks-findings.js'
import {attachTarget, isLoopbackHost} from '../src/attach/index.js'
import {createSourceMapper} from '../src/attach/source-maps.js'
import {FerrydiagCommand} from '../src/cli/base-command.js'
import {checkOutputWritable, writeOutputFile} from '../src/cli/output-file.js'
import {durationFlag, targetFlags, targetOptionsFromFlags} from '../src/cli/flags.js'
import {heapCostFlags, heapGate, heapMaxBytesFromFlag} from '../src/cli/heap-route.js'
import {buildCollectedStacksDump, collectStacks} from '../src/collect/stacks-source.js'
import {FerrydiagError} from '../src/errors.js'
import type {StacksDump} from '../src/model/dump.js'
import {renderStacksPprof} from '../src/render/stacks-pprof.js'
import {renderStacksText} from '../src/render/stacks-text.js'

export default class Stacks extends FerrydiagCommand {
  static summary = 'Dump the pending waits of a running Node pipeline, grouped by await site, and name the ones that can never resume.'

  static description = `Like a Go goroutine dump: every task blocked on a buffer, slot, stream or promise, grouped by await stack, with the buffers and stages involved and findings (a send into a buffer nobody receives from, a wait that can never resume, a deadlock, unusually long waits).

Sources, best first: the agent already in the process (\`node --import ferrydiag/register\`, or the pipeline imports ferrydiag/runtime); the agent injected now (sees only waits that begin afterwards); --heap, a V8 heap snapshot that needs no preparation but stops the target's JavaScript for a while (estimated and confirmed first). The target is never paused by ferrydiag and keeps processing; the Debugger domain is never enabled.

Exit status 0 means the dump was taken, whatever it found (read the findings, or the --json "findings" array, to act on them). Errors exit with a distinct status: see the README.`

  static examples = [
    '<%= config.bin %> stacks --inspect 127.0.0.1:9229',
    '<%= config.bin %> stacks --pid 4242 --min-wait 5s',
    '<%= config.bin %> stacks --inspect 127.0.0.1:9229 --json > dump.json',
    '<%= config.bin %> stacks --inspect 127.0.0.1:9229 --format pprof --output waits.pb.gz',
    '<%= config.bin %> stacks --pid 4242 --heap --yes',
  ]

  static flags = {
    ...targetFlags,
    heap: Flags.boolean({
      summary: 'Also read a V8 heap snapshot: finds waits in a process without the agent (stops the target while it is written).',
      default: false,
    }),
    inject: Flags.boolean({
      summary: 'Inject the agent when the target has none (without --heap). --no-inject fails instead (exit 20).',
      default: true,
      allowNo: true,
    }),
    'min-wait': durationFlag({name: 'min-wait', summary: 'Show only tasks waiting at least this long (findings still consider all).'}),
    'stuck-after': durationFlag({
      name: 'stuck-after',
      summary: 'A wait at least this long may be called stuck (unfilled slot, buffer nobody receives from, deadlock).',
      defaultMs: DEFAULT_STUCK_AFTER_MS,
    }),
    debug: Flags.integer({
      summary: 'Detail: 1 groups identical stacks (default), 2 lists every task separately.',
      helpValue: '1|2',
      min: 1,
      max: 2,
      default: 1,
    }),
    format: Flags.string({
      summary: 'Output format: text, or pprof (gzipped profile.proto; needs --output).',
      options: ['text', 'pprof'],
      default: 'text',
    }),
    output: Flags.string({
      char: 'o',
      summary: 'Write the output to FILE instead of stdout (checked before attaching).',
      helpValue: 'FILE',
    }),
    'source-maps': Flags.boolean({
      summary: 'Map compiled frames to their original (TypeScript) locations using .js.map files next to them.',
      default: true,
      allowNo: true,
    }),
    timeout: durationFlag({name: 'timeout', summary: 'Budget for each evaluation in the target.', defaultMs: 10_000}),
    ...heapCostFlags,
  }

  async run(): Promise<StacksDump> {
    const {flags} = await this.parse(Stacks)
    const format = flags.format as 'text' | 'pprof'
    const debugLevel = flags.debug
    if (format === 'pprof' && flags.output === undefined) {
      throw new FerrydiagError(
        'badArgument',
        '--format pprof writes a binary profile and needs --output FILE.',
        'Pass --output waits.pb.gz (then open it with `go tool pprof waits.pb.gz`).',
      )
    }
    // Before attaching, so a typo in the path leaves the target untouched.
    if (flags.output !== undefined) checkOutputWritable(flags.output, '--output')
    // --json --output FILE: the JSON document goes to FILE (text goes there without --json).
    if (format === 'text' && this.jsonEnabled()) this.jsonOutputFile = flags.output

    const heapMaxBytes = heapMaxBytesFromFlag(flags['heap-max'])
    const session = await attachTarget({...targetOptionsFromFlags(flags), connectTimeoutMs: flags.timeout, budgetFlag: '--timeout'})
    const gate = heapGate(session, {heapMaxBytes, yes: flags.yes})
    let dump: StacksDump
    try {
      const collected = await collectStacks(session, {
        heap: flags.heap,
        inject: flags.inject,
        budgetMs: flags.timeout,
        observeMs: flags.observe,
        heapTimeoutMs: flags['heap-timeout'],
        confirmHeap: gate.confirmHeap,
        // The agent saw nothing: offer the heap route at a terminal only (a script gets the finding), and
        // only within the same limits as --heap.
        offerHeap: (estimate) => gate.offerHeap(estimate, 'The agent sees nothing of this pipeline (no task, no ferrydiag buffer). '),
      })
      // Only a target on this machine has its files on our disk.
      const local = !flags['allow-remote'] && isLoopbackHost(session.target.host)
      const mapper = flags['source-maps'] && local ? createSourceMapper() : null
      dump = buildCollectedStacksDump(collected, {
        minWaitMs: flags['min-wait'],
        stuckAfterMs: flags['stuck-after'],
        ungrouped: debugLevel === 2,
        mapLocation: mapper ? (frame) => mapper.mapFrame(frame) : undefined,
      })
    } finally {
      await session.detach()
    }

    if (format === 'pprof') {
      writeOutputFile(flags.output!, renderStacksPprof(dump), '--output', 'the dump was taken')
      if (!this.jsonEnabled()) process.stderr.write(`wrote pprof profile (${dump.groups.length} groups) to ${flags.output}\n`)
    } else if (!this.jsonEnabled()) {
      const toFile = flags.output !== undefined
      const text = renderStacksText(dump, {
        color: !toFile && process.stdout.isTTY === true,
        widthColumns: toFile ? 100 : (process.stdout.columns ?? 100),
      })
      if (toFile) writeOutputFile(flags.output!, text, '--output', 'the dump was taken')
      else process.stdout.write(text)
    }
    return dump
  }
}

