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
  const {execute} = await import('@oclif/core')
  await execute({dir: import.meta.url})
}
