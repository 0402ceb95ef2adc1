// The interface is a contract: every command's flags (oclif's own view, oclif.manifest.json) and the
// shape of every `--json` document (expanded from its TypeScript type with the compiler's checker) are
// compared with test/command-snapshot.json. A change to either fails here until the snapshot is
// regenerated on purpose (UPDATE_SNAPSHOT=1 npm test -- command-snapshot) and the diff reviewed: a
// changed --json shape also needs its `version` bumped and a README line.
import assert from 'node:assert/strict'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {test} from 'node:test'
import ts from 'typescript'
import {REPO_ROOT} from './helpers/source-files.js'

/** Each command's --json document: the file that declares its type, and the type's name. */
const JSON_DOCUMENTS: Record<string, {file: string; type: string}> = {
  stacks: {file: 'src/model/dump.ts', type: 'StacksDump'},
  lag: {file: 'src/model/lag-result.ts', type: 'LagResult'},
  'tune-batch': {file: 'src/model/tune-batch.ts', type: 'TuneBatchResult'},
  replica: {file: 'src/model/replica.ts', type: 'ReplicaReport'},
  'binlog audit': {file: 'src/model/binlog-audit.ts', type: 'BinlogAuditReport'},
  'binlog diff': {file: 'src/model/binlog-diff.ts', type: 'BinlogDiffReport'},
}

const SNAPSHOT = join(REPO_ROOT, 'test', 'command-snapshot.json')

interface ManifestFlag {
  name: string
  type: 'boolean' | 'option'
  char?: string
  allowNo?: boolean
  multiple?: boolean
  options?: string[]
  required?: boolean
  aliases?: string[]
  hidden?: boolean
}

function flagSnapshot(): Record<string, Record<string, string>> {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'oclif.manifest.json'), 'utf8')) as {
    commands: Record<string, {flags: Record<string, ManifestFlag>}>
  }
  const out: Record<string, Record<string, string>> = {}
  for (const id of Object.keys(manifest.commands).sort()) {
    const flags: Record<string, string> = {}
    for (const flag of Object.values(manifest.commands[id].flags).sort((a, b) => a.name.localeCompare(b.name))) {
      const parts: string[] = [flag.type]
      if (flag.char) parts.push(`-${flag.char}`)
      if (flag.allowNo) parts.push('allow-no')
      if (flag.multiple) parts.push('multiple')
      if (flag.required) parts.push('required')
      if (flag.hidden) parts.push('hidden')
      if (flag.options) parts.push(`options=${[...flag.options].join('|')}`)
      if (flag.aliases?.length) parts.push(`aliases=${flag.aliases.join('|')}`)
      flags[flag.name] = parts.join(' ')
    }
    out[id.replace(/:/g, ' ')] = flags
  }
  return out
}

/** The structural shape of a type: primitives by name, literal unions spelled out, objects by member. */
function shapeOf(checker: ts.TypeChecker, type: ts.Type, depth: number, stack: ts.Type[]): unknown {
  if (depth > 12 || stack.includes(type)) return checker.typeToString(type)
  if (type.isUnion()) {
    const parts = type.types.map((member) => shapeOf(checker, member, depth + 1, [...stack, type]))
    const simple = parts.every((p) => typeof p === 'string')
    if (!simple) return {oneOf: parts}
    const names = new Set(parts as string[])
    if (names.has('true') && names.has('false')) {
      names.delete('true')
      names.delete('false')
      names.add('boolean')
    }
    return [...names].sort().join(' | ')
  }
  if (type.flags & (ts.TypeFlags.StringLike | ts.TypeFlags.NumberLike | ts.TypeFlags.BooleanLike | ts.TypeFlags.Null | ts.TypeFlags.Undefined)) {
    return checker.typeToString(type)
  }
  if (checker.isArrayType(type) || checker.isTupleType(type)) {
    const element = checker.getTypeArguments(type as ts.TypeReference)
    return element.map((e) => shapeOf(checker, e, depth + 1, [...stack, type]))
  }
  const properties = checker.getPropertiesOfType(type)
  const index = type.getStringIndexType()
  if (properties.length === 0 && index) return {'[key: string]': shapeOf(checker, index, depth + 1, [...stack, type])}
  if (properties.length === 0) return checker.typeToString(type)
  const out: Record<string, unknown> = {}
  for (const property of [...properties].sort((a, b) => a.name.localeCompare(b.name))) {
    const declaration = property.valueDeclaration ?? property.declarations?.[0]
    if (!declaration) continue
    const optional = (property.flags & ts.SymbolFlags.Optional) !== 0
    const propertyType = checker.getTypeOfSymbolAtLocation(property, declaration)
    out[optional ? `${property.name}?` : property.name] = shapeOf(checker, checker.getNonNullableType(propertyType) === propertyType || !optional ? propertyType : checker.getNonNullableType(propertyType), depth + 1, [...stack, type])
  }
  return out
}

function jsonShapes(): Record<string, unknown> {
  const files = Object.values(JSON_DOCUMENTS).map((d) => join(REPO_ROOT, d.file))
  const program = ts.createProgram(files, {strict: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, skipLibCheck: true, noEmit: true})
  const checker = program.getTypeChecker()
  const out: Record<string, unknown> = {}
  for (const [command, {file, type}] of Object.entries(JSON_DOCUMENTS)) {
    const source = program.getSourceFile(join(REPO_ROOT, file))
    assert.ok(source, `${file} not found`)
    const symbol = checker.getExportsOfModule(checker.getSymbolAtLocation(source)!).find((s) => s.name === type)
    assert.ok(symbol, `${file} exports no ${type}`)
    out[command] = shapeOf(checker, checker.getDeclaredTypeOfSymbol(symbol), 0, [])
  }
  return out
}

test('every command\'s flags and --json shape match test/command-snapshot.json', () => {
  const actual = {flags: flagSnapshot(), json: jsonShapes()}
  const manifestCommands = Object.keys(actual.flags)
  for (const command of manifestCommands) {
    assert.ok(command in JSON_DOCUMENTS || command.replace(/ /g, ':') in JSON_DOCUMENTS || command === 'help', `command '${command}' has no --json document type listed in JSON_DOCUMENTS`)
  }
  if (process.env.UPDATE_SNAPSHOT === '1' || !existsSync(SNAPSHOT)) {
    writeFileSync(SNAPSHOT, `${JSON.stringify(actual, null, 2)}\n`)
    assert.ok(process.env.UPDATE_SNAPSHOT === '1', 'test/command-snapshot.json was missing and has been written: review it and commit it')
    return
  }
  const expected = JSON.parse(readFileSync(SNAPSHOT, 'utf8')) as typeof actual
  assert.deepEqual(actual.flags, expected.flags, 'flags changed: if on purpose, UPDATE_SNAPSHOT=1 npm test -- command-snapshot and review the diff')
  assert.deepEqual(actual.json, expected.json, '--json shape changed: bump its version, say so in the README, then UPDATE_SNAPSHOT=1 npm test -- command-snapshot')
})
