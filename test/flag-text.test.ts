// Every flag a user-facing text names exists on the command that can print it. The texts are the string
// and template literals of src/ and commands/ (parsed with the TypeScript compiler, not grepped); the
// commands that can print a text are those whose import closure reaches the module it is in; the flags
// are oclif's own view of each command (oclif.manifest.json, written by `npm run build`). A text that
// names `ferrydiag <command> … --flag` is checked against that command instead, and flags that belong to
// other programs (node, mariadb-binlog, the reference pipeline) are recognised by what precedes them.
import assert from 'node:assert/strict'
import {readFileSync, rmSync, writeFileSync} from 'node:fs'
import {test} from 'node:test'
import {dirname, join, relative, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import ts from 'typescript'
import {listSourceFiles, relativeImportsOf, REPO_ROOT} from './helpers/source-files.js'

interface ManifestFlag {
  name: string
  char?: string
  allowNo?: boolean
  aliases?: string[]
  type: string
}
interface ManifestFlag2 extends ManifestFlag {
  summary?: string
  description?: string
}
interface ManifestCommand {
  flags: Record<string, ManifestFlag2>
  relativePath?: string[]
  summary?: string
  description?: string
  examples?: unknown[]
}
interface Manifest {
  commands: Record<string, ManifestCommand>
}

/** A flag named in a text, where. */
interface Mention {
  flag: string
  file: string
  line: number
  /** `ferrydiag <command>` named just before the flag in the same text, if any. */
  command?: string
  text: string
}

const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'oclif.manifest.json'), 'utf8')) as Manifest

/** Flags every command accepts through oclif itself. */
const OCLIF_FLAGS = new Set(['help', 'version'])

/** Programs whose flags a text may name: a flag right after one of these words (same text) is theirs. */
const FOREIGN_PROGRAM = /\b(node|NODE_OPTIONS|mariadb-binlog|mysqlbinlog|mariadbd|mysqld|mariadb-install-db|npm run pipeline|go tool pprof|tsc)\b[^`'"]*$/

/** Properties of oclif flag and command definitions: their texts are read from the manifest. */
const HELP_PROPERTIES = new Set(['summary', 'description', 'helpValue', 'examples'])

/**
 * Texts a shared module holds that only some of the commands importing it can reach, each with why:
 * module-level reachability cannot see the condition that guards them.
 */
const REACHED_ONLY_BY: ReadonlyArray<{file: string; flags: readonly string[]; commands: readonly string[]; why: string}> = [
  {file: 'src/attach/heap-snapshot.ts', flags: ['heap', 'heap-max', 'heap-timeout'], commands: ['stacks', 'lag'], why: 'the heap route runs only for stacks and lag --heap; other commands import the module to wait for a snapshot in flight'},
  {file: 'src/attach/connect.ts', flags: ['timeout'], commands: ['stacks'], why: 'said only for a budget under 100 ms, which only stacks --timeout can set'},
  {file: 'src/analyze/find-long-waits.ts', flags: ['min-wait'], commands: ['stacks'], why: 'long-wait findings are warnings; lag --heap keeps only the error findings of the stacks analysis'},
  {file: 'src/collect/stacks-source.ts', flags: ['no-inject'], commands: ['stacks'], why: 'lag reads the agent\'s records with injection off only when the agent is there, and on any failure goes to the heap route without printing it'},
  {file: 'src/cli/base-command.ts', flags: ['output'], commands: ['stacks', 'replica'], why: "the label of the command's own --output file, used only when the command set one"},
]

/** Flags of other programs that texts name without the program's name right before them. */
const FOREIGN_FLAGS = new Map([
  ['disable-sigusr1', 'node'],
  ['inspect-port', 'node'],
  ['log-bin', 'the MariaDB/MySQL server'],
  ['binlog-format', 'the MariaDB/MySQL server'],
  ['binlog-row-image', 'the MariaDB/MySQL server'],
  ['server-id', 'the MariaDB/MySQL server'],
  ['log-slave-updates', 'the MariaDB server'],
  ['gtid-strict-mode', 'the MariaDB server'],
  ['performance-schema', 'the MariaDB/MySQL server'],
  ['verify-binlog-checksum', 'mariadb-binlog'],
])

function flagsOf(commandId: string): Set<string> {
  const names = new Set(OCLIF_FLAGS)
  for (const flag of Object.values(manifest.commands[commandId].flags)) {
    names.add(flag.name)
    for (const alias of flag.aliases ?? []) names.add(alias)
    if (flag.allowNo) names.add(`no-${flag.name}`)
  }
  return names
}

/** Text pieces of a file: string literals, template heads/middles/tails, with their line numbers. */
function textsOf(file: string): {text: string; line: number}[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true)
  const out: {text: string; line: number}[] = []
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) return
    // Flag definitions' texts appear in the help of exactly the commands that have the flag: checked per
    // command from the manifest (see helpTexts), not here.
    if (ts.isPropertyAssignment(node) && ts.isIdentifier(node.name) && HELP_PROPERTIES.has(node.name.text)) return
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) {
      out.push({text: node.text, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1})
    } else if (ts.isTemplateExpression(node)) {
      // The whole template with each substitution replaced by a placeholder keeps the words around a flag.
      const text = node.head.text + node.templateSpans.map((span) => `\u0000${span.literal.text}`).join('')
      out.push({text, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1})
      node.templateSpans.forEach((span) => visit(span.expression))
      return
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return out
}

/** The source files a file loads at run time (type-only imports cannot print anything). */
function importsOf(file: string): string[] {
  return relativeImportsOf(file, {runtimeOnly: true}).map((spec) => resolveSource(file, spec)).filter((p): p is string => p !== undefined)
}

function resolveSource(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec)
  for (const candidate of [base.replace(/\.c?js$/, '.ts'), base.replace(/\.cjs$/, '.cts'), base]) {
    if (candidate.endsWith('.ts') || candidate.endsWith('.cts')) {
      try {
        readFileSync(candidate)
        return candidate
      } catch {
        // try the next form
      }
    }
  }
  return undefined
}

function closureOf(entry: string): Set<string> {
  const seen = new Set<string>()
  const stack = [entry]
  while (stack.length > 0) {
    const file = stack.pop()!
    if (seen.has(file)) continue
    seen.add(file)
    stack.push(...importsOf(file))
  }
  return seen
}

/** Flags named in one text, with the `ferrydiag <command>` named before each, if any. */
function findMentionsInString(text: string): Array<{flag: string; command?: string}> {
  const out: Array<{flag: string; command?: string}> = []
  for (const match of text.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)) {
      const before = text.slice(0, match.index)
      if (FOREIGN_PROGRAM.test(before)) continue
      const named = /ferrydiag ([a-z-]+(?: [a-z-]+)?)\b[^`'"]*$/.exec(before)
      let command: string | undefined
      if (named) {
        const words = named[1].split(' ')
        command = [words.join(':'), words[0]].find((id) => id in manifest.commands)
      }
      if (!command && FOREIGN_FLAGS.has(match[1])) continue
      out.push({flag: match[1], command})
  }
  return out
}

export function findMentions(file: string): Mention[] {
  const mentions: Mention[] = []
  for (const {text, line} of textsOf(file)) {
    // A text that is only a flag's name is data (a label for the flag itself), not a sentence naming it.
    if (/^--[a-z][a-z0-9-]*$/.test(text)) continue
    for (const {flag, command} of findMentionsInString(text)) mentions.push({flag, file: relative(REPO_ROOT, file), line, command, text})
  }
  return mentions
}

test('every flag a message names exists on each command that can print it', () => {
  const commandFiles = new Map<string, string>()
  for (const [id, command] of Object.entries(manifest.commands)) {
    const compiled = join(REPO_ROOT, ...(command.relativePath ?? []))
    commandFiles.set(id, join(REPO_ROOT, relative(join(REPO_ROOT, 'dist'), compiled)).replace(/\.js$/, '.ts'))
  }
  const closures = new Map([...commandFiles].map(([id, file]) => [id, closureOf(file)]))
  const problems: string[] = []
  let checked = 0
  for (const file of listSourceFiles(['src', 'commands'])) {
    if (file.includes(`${join('src', 'agent')}`) || file.includes(join('src', 'runtime'))) continue // runs in the target: no CLI flags
    for (const mention of findMentions(file)) {
      const printers = mention.command ? [mention.command] : [...closures].filter(([, files]) => files.has(file)).map(([id]) => id)
      const guarded = REACHED_ONLY_BY.find((r) => mention.file === r.file && r.flags.includes(mention.flag))
      for (const id of guarded ? printers.filter((p) => guarded.commands.includes(p)) : printers) {
        checked++
        if (!flagsOf(id).has(mention.flag)) {
          problems.push(`${mention.file}:${mention.line}: names --${mention.flag}, which \`ferrydiag ${id.replace(/:/g, ' ')}\` does not have: ${JSON.stringify(mention.text.slice(0, 140))}`)
        }
      }
    }
  }
  assert.ok(checked > 20, `only ${checked} flag mentions were checked: the scan found too little`)
  assert.deepEqual(problems, [])
})

test('every flag a command\'s help names exists on that command', () => {
  const problems: string[] = []
  let checked = 0
  for (const [id, command] of Object.entries(manifest.commands) as Array<[string, ManifestCommand]>) {
    const texts = [command.summary, command.description, ...(command.examples ?? []).map(String), ...Object.values(command.flags).flatMap((f) => [f.summary, f.description])]
    for (const text of texts) {
      if (typeof text !== 'string') continue
      for (const mention of findMentionsInString(text)) {
        checked++
        const owner = mention.command ?? id
        if (!flagsOf(owner).has(mention.flag)) problems.push(`help of \`ferrydiag ${id.replace(/:/g, ' ')}\` names --${mention.flag}, which \`ferrydiag ${owner.replace(/:/g, ' ')}\` does not have: ${JSON.stringify(text.slice(0, 140))}`)
      }
    }
  }
  assert.ok(checked > 20, `only ${checked} flag mentions in help texts`)
  assert.deepEqual(problems, [])
})

test('the check fails on a message that names a missing flag', () => {
  const mentions = findMentionsInText('run ferrydiag lag --no-such-flag, or node --inspect app.js')
  assert.deepEqual(
    mentions.map((m) => [m.flag, m.command, m.command ? flagsOf(m.command).has(m.flag) : null]),
    [['no-such-flag', 'lag', false]],
  )
})

/** findMentions over a single in-memory text (for the self-test), through a temporary source file. */
function findMentionsInText(text: string): Mention[] {
  const tmp = join(dirname(fileURLToPath(import.meta.url)), `flag-text-probe-${process.pid}.ts`)
  writeFileSync(tmp, `export const message = ${JSON.stringify(text)}\n`)
  try {
    return findMentions(tmp)
  } finally {
    rmSync(tmp, {force: true})
  }
}
