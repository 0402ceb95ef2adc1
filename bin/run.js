#!/usr/bin/env node
// Entry point of the ferrydiag CLI: hands argv to oclif, which finds the compiled commands through
// oclif.manifest.json (written by `npm run build`). `--version` alone is answered here, in oclif's own
// format, without loading oclif: it is what scripts and health checks call most, and loading oclif
// costs more than the answer.
const args = process.argv.slice(2)
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v')) {
  const {readFileSync} = await import('node:fs')
  const pjson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  process.stdout.write(`${pjson.name}/${pjson.version} ${process.platform}-${process.arch} node-${process.version}\n`)
} else {
  // Loading @oclif/core checks Node against oclif's own `engines` with semver, 47 more modules on
  // every start; ferrydiag's `engines` (node >= 20.19) is stricter than oclif's, so the check is skipped
  // (unless the user set the variable) and the environment is left as it was for anything we spawn.
  const skipEngineCheck = process.env.OCLIF_DISABLE_ENGINE_WARNING === undefined
  if (skipEngineCheck) process.env.OCLIF_DISABLE_ENGINE_WARNING = '1'
  const {execute} = await import('@oclif/core')
  if (skipEngineCheck) delete process.env.OCLIF_DISABLE_ENGINE_WARNING
  await execute({dir: import.meta.url})
}
