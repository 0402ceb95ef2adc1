// The base class every ferrydiag command extends: --json support, and errors shown as one line plus
// "Try this:" with a distinct exit status (FerrydiagError) instead of a stack trace.

import {Command, Errors} from '@oclif/core'

import {isFerrydiagError} from '../errors.js'

/** oclif's parser prefixes a failing flag parse as "Parsing --NAME \n\tMESSAGE\nSee more help with --help". */
const FLAG_PARSE_WRAPPER = /^Parsing (--\S+) \n\t([\s\S]*)\nSee more help with --help$/

/** What `--json` prints for a failure: stable keys a script can match on. */
export interface ErrorJson {
  error: {code: string; exit: number; message: string; suggestion?: string}
}

export abstract class FerrydiagCommand extends Command {
  static enableJsonFlag = true

  /**
   * Turns any failure into an oclif CLIError: a FerrydiagError keeps its code, exit status and
   * suggestion; oclif's own errors (usage, exit) pass through; anything else becomes one line, exit 1.
   */
  protected async catch(err: Error & {exitCode?: number}): Promise<unknown> {
    const cliError = toCliError(err) as Error & {oclif?: {exit?: number}}
    // With --json oclif prints the error object and returns instead of throwing, and would exit 1;
    // keep the FerrydiagError's own exit status there too.
    if (this.jsonEnabled() && cliError.oclif?.exit !== undefined) process.exitCode = cliError.oclif.exit
    return super.catch(cliError)
  }

  protected toErrorJson(err: unknown): ErrorJson {
    const cliError = err as Errors.CLIError & {code?: string; suggestions?: string[]}
    return {
      error: {
        code: cliError.code ?? 'unexpected',
        exit: cliError.oclif?.exit ?? 1,
        message: cliError.message,
        ...(cliError.suggestions?.[0] ? {suggestion: cliError.suggestions[0]} : {}),
      },
    }
  }
}

/** Exposed for tests and for code that reports errors outside a command. */
export function toCliError(err: unknown): Error {
  if (isFerrydiagError(err)) {
    const wrapped = FLAG_PARSE_WRAPPER.exec(err.message)
    const message = wrapped ? `${wrapped[1]}: ${wrapped[2]}` : err.message
    return new Errors.CLIError(message, {exit: err.exit, code: err.code, suggestions: [err.suggestion]})
  }
  // oclif's own errors (parse errors exit 2, this.exit()) already carry their exit status.
  if (err instanceof Errors.CLIError || err instanceof Errors.ExitError) return err
  if (err instanceof Error && typeof (err as {oclif?: unknown}).oclif === 'object') return err
  const message = err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err)
  return new Errors.CLIError(firstLine(message) || 'Unexpected failure', {exit: 1, code: 'unexpected'})
}

function firstLine(text: string): string {
  return text.split('\n').find((line) => line.trim().length > 0)?.trim() ?? ''
}
