// Writes oclif.manifest.json after each build, so the CLI starts without importing every command module
// (oclif reads each command's flags from the manifest and imports only the command that runs).
// Run by `npm run build`; the manifest is generated, never committed (see .gitignore).
import {rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Config} from '@oclif/core'
import {isFixedDefaultHelp} from '../dist/src/cli/flags.js'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const target = join(root, 'oclif.manifest.json')
rmSync(target, {force: true}) // a stale manifest must not be read while building the new one
const config = await Config.load({root})
const plugin = config.rootPlugin ?? config.plugins.get(config.name)
if (!plugin?.manifest || Object.keys(plugin.manifest.commands).length === 0) {
  console.error('write-oclif-manifest: oclif found no commands under', config.pjson.oclif?.commands)
  process.exit(1)
}
// oclif counts every defaultHelp function as dynamic help, which makes `<command> --help` import the
// command module; a flag whose default text is fixed (fixedDefaultHelp in src/cli/flags.ts) is not.
for (const [id, cached] of Object.entries(plugin.manifest.commands)) {
  const Command = await config.findCommand(id, {must: true}).load()
  for (const [name, flag] of Object.entries(cached.flags)) {
    if (flag.hasDynamicHelp && isFixedDefaultHelp(Command.flags?.[name]?.defaultHelp)) flag.hasDynamicHelp = false
  }
  cached.hasDynamicHelp = Object.values(cached.flags).some((flag) => flag.hasDynamicHelp === true)
}
writeFileSync(target, JSON.stringify(plugin.manifest, null, 2) + '\n')
console.log(`write-oclif-manifest: ${Object.keys(plugin.manifest.commands).length} commands -> oclif.manifest.json`)
