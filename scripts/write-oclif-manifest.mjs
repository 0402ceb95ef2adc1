// Writes oclif.manifest.json after each build, so the CLI starts without importing every command module
// (oclif reads each command's flags from the manifest and imports only the command that runs).
// Run by `npm run build`; the manifest is generated, never committed (see .gitignore).
import {rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Config} from '@oclif/core'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const target = join(root, 'oclif.manifest.json')
rmSync(target, {force: true}) // a stale manifest must not be read while building the new one
const config = await Config.load({root})
const plugin = config.rootPlugin ?? config.plugins.get(config.name)
if (!plugin?.manifest || Object.keys(plugin.manifest.commands).length === 0) {
  console.error('write-oclif-manifest: oclif found no commands under', config.pjson.oclif?.commands)
  process.exit(1)
}
writeFileSync(target, JSON.stringify(plugin.manifest, null, 2) + '\n')
console.log(`write-oclif-manifest: ${Object.keys(plugin.manifest.commands).length} commands -> oclif.manifest.json`)
