// Output files named on the command line (--output, --plot): checked before any work starts, so a typo
// costs nothing and the target is never touched, and written with the same one-line error.
import {accessSync, constants, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {FerrydiagError} from '../errors.js'

/** Throws outputUnwritable unless FILE can be created or overwritten. Creates nothing. */
export function checkOutputWritable(file: string, flag: string): void {
  const resolved = path.resolve(file)
  const fail = (why: string): never => {
    throw new FerrydiagError('outputUnwritable', `Cannot write ${flag} ${file}: ${why}.`, 'Pass a path in an existing directory you can write to.')
  }
  let isDirectory = false
  try {
    isDirectory = statSync(resolved).isDirectory()
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') fail((error as Error).message)
    const dir = path.dirname(resolved)
    try {
      if (!statSync(dir).isDirectory()) fail(`${dir} is not a directory`)
      accessSync(dir, constants.W_OK)
    } catch (dirError) {
      if (dirError instanceof FerrydiagError) throw dirError
      fail((dirError as NodeJS.ErrnoException).code === 'ENOENT' ? `directory ${dir} does not exist` : `directory ${dir} is not writable`)
    }
    return
  }
  if (isDirectory) fail('it is a directory')
  try {
    accessSync(resolved, constants.W_OK)
  } catch {
    fail('the file exists and is not writable')
  }
}

/** Writes FILE; a failure (the disk filled up meanwhile, say) is outputUnwritable, with what was done. */
export function writeOutputFile(file: string, data: string | Buffer, flag: string, done: string): void {
  try {
    writeFileSync(file, data)
  } catch (error) {
    throw new FerrydiagError(
      'outputUnwritable',
      `Cannot write ${flag} ${file}: ${(error as Error).message}.`,
      `Pass a path in an existing directory you can write to; ${done}, so run again with another path.`,
    )
  }
}
