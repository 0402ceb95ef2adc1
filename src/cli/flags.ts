// Flags shared by every command that attaches to a target (--inspect, --pid, --allow-remote) and a
// duration flag builder, so all commands spell, describe and validate them the same way.

import {Flags, type Interfaces} from '@oclif/core'

import type {ResolveTargetOptions} from '../attach/target.js'
import {formatDuration, parseDuration} from './duration.js'

/** Spread into a command's `static flags`. */
export const targetFlags = {
  inspect: Flags.string({
    summary: 'Inspector address of the target, HOST:PORT (default 127.0.0.1:9229).',
    description:
      'The address the target printed in "Debugger listening on ws://HOST:PORT/…". Only loopback hosts are accepted unless --allow-remote is given.',
    helpValue: 'HOST:PORT',
    exclusive: ['pid'],
  }),
  pid: Flags.integer({
    summary: 'Process id of the target; its inspector is found, or opened with SIGUSR1 and closed again afterwards.',
    helpValue: 'PID',
    min: 1,
    exclusive: ['inspect'],
  }),
  'allow-remote': Flags.boolean({
    summary: 'Allow a non-loopback --inspect host (the inspector protocol is unauthenticated).',
    default: false,
  }),
}

/** The parsed values of targetFlags, as a command sees them. */
export interface TargetFlagValues {
  inspect?: string
  pid?: number
  'allow-remote': boolean
}

/** Maps parsed target flags onto attach options. */
export function targetOptionsFromFlags(flags: TargetFlagValues): ResolveTargetOptions {
  return {inspect: flags.inspect, pid: flags.pid, allowRemote: flags['allow-remote']}
}

/**
 * A flag holding a duration in milliseconds (see parseDuration). A malformed value fails with
 * FerrydiagError badDuration, which the base command reports on one line. With defaultMs the parsed
 * value is always a number.
 */
export function durationFlag(options: {name: string; summary: string; defaultMs: number}): Interfaces.OptionFlag<number>
export function durationFlag(options: {name: string; summary: string}): Interfaces.OptionFlag<number | undefined>
export function durationFlag(options: {
  name: string
  summary: string
  defaultMs?: number
}): Interfaces.OptionFlag<number | undefined> {
  const build = Flags.custom<number>({
    summary: options.summary,
    helpValue: 'DURATION',
    parse: async (input: string) => parseDuration(input, `--${options.name}`),
  })
  if (options.defaultMs === undefined) return build()
  const defaultMs = options.defaultMs
  return build({default: defaultMs, defaultHelp: fixedDefaultHelp(formatDuration(defaultMs))})
}

// oclif marks a flag whose defaultHelp is a function as dynamic, and then imports the whole command
// module (and everything it imports) to show `<command> --help`. A default text that depends on nothing
// is marked here, and scripts/write-oclif-manifest.mjs records such flags as static in the manifest, so
// help is drawn from the manifest alone.
const FIXED_DEFAULT_HELP = Symbol.for('ferrydiag.fixedDefaultHelp')

/** A flag's defaultHelp that always shows `text` (it reads neither other flags nor the environment). */
export function fixedDefaultHelp(text: string): () => Promise<string> {
  const help = async (): Promise<string> => text
  return Object.assign(help, {[FIXED_DEFAULT_HELP]: true})
}

/** Whether a flag's defaultHelp was made by fixedDefaultHelp. */
export function isFixedDefaultHelp(defaultHelp: unknown): boolean {
  return typeof defaultHelp === 'function' && (defaultHelp as unknown as Record<symbol, unknown>)[FIXED_DEFAULT_HELP] === true
}
