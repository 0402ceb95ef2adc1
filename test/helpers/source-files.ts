// The repository's own TypeScript sources, for tests that read the code itself (flag texts, import
// direction). Paths are absolute, under the source tree (not dist/).
import {readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import ts from 'typescript'
import {REPO_ROOT} from './make-snapshot.js'

export {REPO_ROOT}

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

/**
 * The relative module specifiers a file imports: static imports, re-exports and literal dynamic
 * imports. With `runtimeOnly`, type-only imports (which load nothing at run time) are left out.
 */
export function relativeImportsOf(file: string, options: {runtimeOnly?: boolean} = {}): string[] {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true)
  const specs: string[] = []
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      if (!(options.runtimeOnly && isTypeOnly(node))) specs.push(node.moduleSpecifier.text)
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      specs.push(node.arguments[0].text)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return specs.filter((spec) => spec.startsWith('.'))
}

function isTypeOnly(node: ts.ImportDeclaration | ts.ExportDeclaration): boolean {
  if (ts.isExportDeclaration(node)) return node.isTypeOnly
  const clause = node.importClause
  if (!clause) return false // a bare `import './x.js'` runs the module
  if (clause.isTypeOnly) return true
  const bindings = clause.namedBindings
  return clause.name === undefined && bindings !== undefined && ts.isNamedImports(bindings) && bindings.elements.length > 0 && bindings.elements.every((e) => e.isTypeOnly)
}
