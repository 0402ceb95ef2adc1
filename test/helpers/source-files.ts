// The repository's own TypeScript sources, for tests that read the code itself (flag texts, import
// direction). Paths are absolute, under the source tree (not dist/).
import {readdirSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The repository root (this file runs from dist/test/helpers/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url))

/** Every .ts/.cts file under the given top-level folders, sorted. */
export function listSourceFiles(folders: readonly string[]): string[] {
  const out: string[] = []
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, {withFileTypes: true})) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (/\.c?ts$/.test(entry.name) && !entry.name.endsWith('.d.ts')) out.push(path)
    }
  }
  for (const folder of folders) walk(join(REPO_ROOT, folder))
  return out.sort()
}
