// The base class every ferrydiag command extends: --json support, the one termination path (signals and
// a closed terminal, src/cli/interrupt.ts), secrets masked in every output, and errors shown as ONE line
// (what was wrong, the code and exit status, what to try) instead of a stack trace or a page of help.

import {Command, Errors} from '@oclif/core'

import {isFerrydiagError} from '../errors.js'
import {maskSecretsDeep, maskSecretsInText} from '../render/mask-secrets.js'
import {installTerminationHandlers, isTerminating} from './interrupt.js'
import {writeOutputFile} from './output-file.js'

/** oclif's parser prefixes a failing flag parse as "Parsing --NAME \n\tMESSAGE\nSee more help with --help". */
const FLAG_PARSE_WRAPPER = /^Parsing (--\S+) \n\t([\s\S]*)\nSee more help with --help$/

/** What `--json` prints for a failure: stable keys a script can match on. */
export interface ErrorJson {
  error: {code: string; exit: number; message: string; suggestion?: string}
}

export abstract class FerrydiagCommand extends Command {
  static enableJsonFlag = true

  /** Set by a command whose --output FILE receives the --json document instead of stdout. */
  protected jsonOutputFile: string | undefined

  async init(): Promise<void> {
    installTerminationHandlers()
    await super.init()
  }

  /**
   * Reports any failure as one line (or the --json error document) with the error's exit status. While
   * the CLI is being ended by a signal, the failures of steps cut short are not reported: the
   * termination path says what happened and exits.
   */
  protected async catch(err: Error & {exitCode?: number}): Promise<unknown> {
    if (isTerminating()) return undefined
    const cliError = toCliError(err) as Errors.CLIError & {code?: string; suggestions?: string[]}
    if (cliError instanceof Errors.ExitError) throw cliError
    const json = this.toErrorJson(cliError)
    process.exitCode = json.error.exit
    if (this.jsonEnabled()) {
      process.stdout.write(`${JSON.stringify(json, null, 2)}\n`)
    } else {
      process.stderr.write(`${formatErrorLine(json, this.id?.replace(/:/g, ' '))}\n`)
    }
    return undefined
  }

  protected toErrorJson(err: unknown): ErrorJson {
    const cliError = toCliError(err) as Errors.CLIError & {code?: string; suggestions?: string[]}
    const exit = cliError.oclif?.exit ?? 1
    return {
      error: {
        code: cliError.code ?? (exit === 2 ? 'usage' : 'unexpected'),
        exit,
        message: maskSecretsInText(oneLine(cliError.message)),
        ...(cliError.suggestions?.[0] ? {suggestion: maskSecretsInText(oneLine(cliError.suggestions[0]))} : {}),
      },
    }
  }

  protected toSuccessJson<T>(result: T): T {
    return maskSecretsDeep(result)
  }

  /** Plain JSON.stringify (no colouriser), to --output FILE when the command set one. */
  logJson(json: unknown): void {
    const text = `${JSON.stringify(json, null, 2)}\n`
    if (this.jsonOutputFile !== undefined) writeOutputFile(this.jsonOutputFile, text, '--output', 'the result was computed')
    else process.stdout.write(text)
  }
}

/** `ferrydiag: MESSAGE (code C, exit N). Try this: SUGGESTION` */
export function formatErrorLine(json: ErrorJson, commandId?: string): string {
  const {code, exit, message, suggestion} = json.error
  const tip = suggestion ?? (code === 'usage' ? `see \`ferrydiag ${commandId ?? ''} --help\``.replace('  ', ' ') : undefined)
  return `ferrydiag${commandId ? ` ${commandId}` : ''}: ${message.replace(/[.\s]+$/, '')} (code ${code}, exit ${exit}).${tip ? ` Try this: ${tip}` : ''}`
}

/** Exposed for tests and for code that reports errors outside a command. */
export function toCliError(err: unknown): Error {
  if (isFerrydiagError(err)) {
    const wrapped = FLAG_PARSE_WRAPPER.exec(err.message)
    const message = wrapped ? `${wrapped[1]}: ${wrapped[2]}` : err.message
    return new Errors.CLIError(message, {exit: err.exit, code: err.code, suggestions: [err.suggestion]})
  }
  // oclif's own errors (parse errors exit 2, this.exit()) already carry their exit status; a flag
  // error is a usage error, whatever class oclif gives it.
  if (err instanceof Errors.ExitError) return err
  if (err instanceof Error && typeof (err as {oclif?: unknown}).oclif === 'object') {
    const exit = (err as Errors.CLIError).oclif?.exit
    const code = (err as {code?: string}).code ?? (exit === 2 ? 'usage' : undefined)
    const message = String(err.message ?? '').replace(/\n\s*See more help with --help\s*$/, '')
    return new Errors.CLIError(message, {exit: exit ?? 1, code, suggestions: (err as {suggestions?: string[]}).suggestions})
  }
  const message = err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err)
  return new Errors.CLIError(firstLine(message) || 'Unexpected failure', {exit: 1, code: 'unexpected'})
}

function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim().length > 0)?.trim() ?? ''
}

/** Line breaks inside a message (oclif's parse errors, a list of problems) become "; ". */
function oneLine(text: string): string {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !/^(The following errors? occurred:|See more help with --help)$/.test(line))
    .join('; ')
}
