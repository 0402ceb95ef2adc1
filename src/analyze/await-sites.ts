// Where an async function can be suspended, from its source text alone: the `await`, `yield` and
// `for await` positions that belong to the function itself (not to functions nested in it). The heap
// route uses it when a task's live await position could not be read (the task moved on first).
// A careful scan, not a full parser (no parser is among the dependencies): it tokenizes strings,
// templates, comments and regular expressions, matches brackets, and recognises function bodies by
// their shape. Where it is unsure it finds nothing or several candidates, never a wrong single line.

/** One place a function can be suspended. 1-based line and column of the `await`/`yield` keyword. */
export interface AwaitSite {
  line: number
  column: number
  /** Names called in the awaited expression (`await this.flush(x)` → ['flush']): matches a callee. */
  calls: string[]
}

/** A script scanned once: each function's own awaits, by where its head starts. */
export interface ScannedScript {
  /**
   * The awaits of the function defined at this 0-based line and column (the position V8 records for a
   * function: its parameter list, or a little before it), or null when no function starts there.
   * `moduleBody` asks for the top level of the script (an ES module's body).
   */
  awaitsOf(line: number, column: number, moduleBody?: boolean): AwaitSite[] | null
}

interface Token {
  type: 'name' | 'punct' | 'string' | 'template' | 'regex' | 'number'
  value: string
  start: number
  /** A line break lies between this token and the one before. */
  newlineBefore: boolean
}

interface FunctionSpan {
  /** Offset where the parameter list (or an arrow's single parameter) starts. */
  paramsStart: number
  /** Token indexes: first token of the parameters, last token of the body (inclusive). */
  firstToken: number
  lastToken: number
}

const PUNCTUATORS = [
  '>>>=', '...', '===', '!==', '**=', '<<=', '>>=', '>>>', '&&=', '||=', '??=',
  '=>', '==', '!=', '<=', '>=', '&&', '||', '??', '?.', '++', '--', '+=', '-=', '*=', '/=', '%=', '&=', '|=', '^=', '**', '<<', '>>',
]
/** After these keywords a `/` starts a regular expression. */
const REGEX_AFTER_WORDS = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await', 'extends'])
/** `keyword (…) {` is a statement, not a function. */
const STATEMENT_WORDS = new Set(['if', 'for', 'while', 'switch', 'catch', 'with'])
/** Tokens that, ending a line or starting the next, continue an expression across the break. */
const CONTINUES = new Set(['.', '?.', '?', ':', '+', '-', '*', '/', '%', '**', '&&', '||', '??', '&', '|', '^', '<<', '>>', '>>>', '==', '===', '!=', '!==', '<', '>', '<=', '>=', '=', '=>', '(', '[', ','])
/** The punctuators longer than one character, longest first, by their first character. */
const PUNCTUATORS_BY_FIRST = new Map<string, string[]>()
for (const p of PUNCTUATORS) PUNCTUATORS_BY_FIRST.set(p[0], [...(PUNCTUATORS_BY_FIRST.get(p[0]) ?? []), p])
const LINE_BREAK = /[\n\r\u2028\u2029]/
const isDigit = (c: string): boolean => c >= '0' && c <= '9'
const OPENERS: Record<string, string> = {'(': ')', '[': ']', '{': '}', '${': '}'}
const NAME_START = /[A-Za-z_$\u0080-\uFFFF#]/
const NAME_PART = /[\w$\u0080-\uFFFF]/

/** Tokenizes a script; throws a SyntaxError on text it cannot follow (an unclosed string, comment, template). */
function tokenize(text: string): Token[] {
  const tokens: Token[] = []
  /** Open `{` and `${`: a `}` closing a `${` resumes the template around it. */
  const braces: Array<'{' | '${'> = []
  let i = text.startsWith('#!') ? text.indexOf('\n') : 0
  if (i < 0) return tokens
  let newline = false
  const push = (type: Token['type'], value: string, start: number): void => {
    tokens.push({type, value, start, newlineBefore: newline})
    newline = false
  }
  /** Scans template text from i (just after '`' or a closing '}') to its end or the next '${'. */
  const templateChunk = (start: number): void => {
    let j = i
    while (j < text.length && text[j] !== '`') {
      if (text[j] === '\\') j += 2
      else if (text[j] === '$' && text[j + 1] === '{') break
      else j++
    }
    if (j >= text.length) throw new SyntaxError(`unterminated template at ${start}`)
    push('template', text.slice(start, j), start)
    if (text[j] === '`') i = j + 1
    else {
      braces.push('${')
      push('punct', '${', j)
      i = j + 2
    }
  }
  while (i < text.length) {
    const c = text[i]
    if (c === '\n' || c === '\r' || c === '\u2028' || c === '\u2029') {
      newline = true
      i++
    } else if (c === ' ' || c === '\t' || c === '\v' || c === '\f' || c === '\uFEFF' || c === '\u00A0') {
      i++
    } else if (c === '/' && text[i + 1] === '/') {
      const end = text.indexOf('\n', i)
      i = end < 0 ? text.length : end
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2)
      if (end < 0) throw new SyntaxError(`unterminated comment at ${i}`)
      if (LINE_BREAK.test(text.slice(i, end))) newline = true
      i = end + 2
    } else if (c === '"' || c === "'") {
      let j = i + 1
      while (j < text.length && text[j] !== c && text[j] !== '\n') j += text[j] === '\\' ? 2 : 1
      if (text[j] !== c) throw new SyntaxError(`unterminated string at ${i}`)
      push('string', text.slice(i, j + 1), i)
      i = j + 1
    } else if (c === '`') {
      i++
      templateChunk(i - 1)
    } else if (c === '}' && braces.at(-1) === '${') {
      braces.pop()
      push('punct', '}', i)
      i++
      templateChunk(i - 1)
    } else if (isDigit(c) || (c === '.' && isDigit(text[i + 1] ?? ''))) {
      const match = /^(?:0[xXoObB][\da-fA-F_]+n?|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?n?)/.exec(text.slice(i, i + 64))
      const length = match ? match[0].length : 1
      push('number', text.slice(i, i + length), i)
      i += length
    } else if (NAME_START.test(c) || c === '\\') {
      let j = i + 1
      while (j < text.length && (NAME_PART.test(text[j]) || text[j] === '\\')) j++
      push('name', text.slice(i, j), i)
      i = j
    } else if (c === '/' && regexAllowed(tokens.at(-1))) {
      let j = i + 1
      let inClass = false
      while (j < text.length && text[j] !== '\n' && (inClass || text[j] !== '/')) {
        if (text[j] === '\\') j++
        else if (text[j] === '[') inClass = true
        else if (text[j] === ']') inClass = false
        j++
      }
      if (text[j] !== '/') throw new SyntaxError(`unterminated regular expression at ${i}`)
      j++
      while (j < text.length && NAME_PART.test(text[j])) j++
      push('regex', text.slice(i, j), i)
      i = j
    } else {
      const value = PUNCTUATORS_BY_FIRST.get(c)?.find((p) => text.startsWith(p, i)) ?? c
      if (value === '{') braces.push('{')
      else if (value === '}') braces.pop()
      push('punct', value, i)
      i += value.length
    }
  }
  return tokens
}

function regexAllowed(previous: Token | undefined): boolean {
  if (previous === undefined) return true
  if (previous.type === 'punct') return ![')', ']', '}', '++', '--'].includes(previous.value)
  if (previous.type === 'name') return REGEX_AFTER_WORDS.has(previous.value)
  return false
}

/** For each bracket token, the index of its partner (-1 when unmatched). */
function matchBrackets(tokens: Token[]): Int32Array {
  const partner = new Int32Array(tokens.length).fill(-1)
  const open: number[] = []
  tokens.forEach((token, index) => {
    if (token.type !== 'punct') return
    if (token.value in OPENERS) open.push(index)
    else if (token.value === ')' || token.value === ']' || token.value === '}') {
      const opener = open.pop()
      if (opener === undefined) return
      partner[opener] = index
      partner[index] = opener
    }
  })
  return partner
}

/**
 * Last token of the expression starting at `from`: stops before a `,` or `;` at its own depth, a
 * bracket closing an outer one, or a line break that ends the statement (neither side continues it).
 */
function expressionEnd(tokens: Token[], partner: Int32Array, from: number): number {
  let j = from
  let last = from - 1
  while (j < tokens.length) {
    const token = tokens[j]
    if (token.type === 'punct' && [',', ';', ')', ']', '}'].includes(token.value)) break
    if (j > from && token.newlineBefore && !continuesAcross(tokens[last], token)) break
    const close = token.type === 'punct' && token.value in OPENERS ? partner[j] : -1
    if (token.type === 'punct' && token.value in OPENERS && close < 0) break
    last = close > 0 ? close : j
    j = last + 1
  }
  return last
}

function continuesAcross(before: Token, after: Token): boolean {
  const isContinuation = (t: Token): boolean => t.type === 'punct' && CONTINUES.has(t.value)
  return (isContinuation(before) && before.value !== ')' && before.value !== ']') || (isContinuation(after) && after.value !== '(' && after.value !== '[')
}

/** Every function in the script, found by shape: `=>`, and `(…) {` not preceded by a statement keyword. */
function findFunctions(tokens: Token[], partner: Int32Array): FunctionSpan[] {
  const spans: FunctionSpan[] = []
  tokens.forEach((token, index) => {
    if (token.type !== 'punct') return
    if (token.value === '=>') {
      const before = tokens[index - 1]
      const first = before?.value === ')' && before.type === 'punct' ? partner[index - 1] : before?.type === 'name' ? index - 1 : -1
      if (first < 0) return
      const body = tokens[index + 1]
      const last = body?.type === 'punct' && body.value === '{' ? partner[index + 1] : expressionEnd(tokens, partner, index + 1)
      if (last > index) spans.push({paramsStart: tokens[first].start, firstToken: first, lastToken: last})
    } else if (token.value === '{' && tokens[index - 1]?.value === ')' && tokens[index - 1].type === 'punct') {
      const open = partner[index - 1]
      if (open < 0 || partner[index] < 0) return
      const keyword = tokens[open - 1]
      if (keyword?.type === 'name' && STATEMENT_WORDS.has(keyword.value) && tokens[open - 2]?.value !== '.') return
      if (keyword?.value === 'await' && tokens[open - 2]?.value === 'for') return
      spans.push({paramsStart: tokens[open].start, firstToken: open, lastToken: partner[index]})
    }
  })
  return spans.sort((a, b) => a.firstToken - b.firstToken)
}

/** Scans a script's text once; functions are then looked up by their definition position. */
export function scanScript(text: string): ScannedScript {
  const tokens = tokenize(text)
  const partner = matchBrackets(tokens)
  const functions = findFunctions(tokens, partner)
  // Line starts, to turn offsets into 1-based lines and columns and back.
  const lineStarts = [0]
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1)
  const position = (offset: number): {line: number; column: number} => {
    let low = 0
    let high = lineStarts.length - 1
    while (low < high) {
      const mid = (low + high + 1) >> 1
      if (lineStarts[mid] <= offset) low = mid
      else high = mid - 1
    }
    return {line: low + 1, column: offset - lineStarts[low] + 1}
  }
  // Each await's innermost function (index into functions, -1 for the top level).
  // One sweep with the functions open at each token (spans are sorted by start and nest).
  const awaits: Array<{token: number; owner: number}> = []
  const open: number[] = []
  let nextFunction = 0
  tokens.forEach((token, index) => {
    while (open.length > 0 && functions[open.at(-1)!].lastToken < index) open.pop()
    while (nextFunction < functions.length && functions[nextFunction].firstToken <= index) {
      while (open.length > 0 && functions[open.at(-1)!].lastToken < functions[nextFunction].firstToken) open.pop()
      open.push(nextFunction++)
    }
    while (open.length > 0 && functions[open.at(-1)!].lastToken < index) open.pop()
    if (token.type !== 'name' || (token.value !== 'await' && token.value !== 'yield')) return
    const before = tokens[index - 1]
    if (before?.type === 'punct' && (before.value === '.' || before.value === '?.')) return // a property name
    if (tokens[index + 1]?.value === ':' && tokens[index + 1].type === 'punct') return // a key or a label
    awaits.push({token: index, owner: open.at(-1) ?? -1})
  })
  const siteOf = (index: number): AwaitSite => {
    const end = expressionEnd(tokens, partner, index + 1)
    const calls: string[] = []
    for (let j = index + 1; j < end; j++) {
      const next = tokens[j + 1]
      if (tokens[j].type === 'name' && next.type === 'punct' && (next.value === '(' || next.value === '?.')) calls.push(tokens[j].value)
    }
    return {...position(tokens[index].start), calls}
  }
  const offsetOf = (line: number, column: number): number => (lineStarts[line] ?? text.length) + column
  return {
    awaitsOf(line, column, moduleBody = false) {
      let owner = -1
      if (!moduleBody) {
        // The first function whose parameters start at or after the recorded position (spans are sorted
        // by start), with only its head (`async`, `function`, `*`, a name, `get`/`static`) in between.
        const offset = offsetOf(line, column)
        owner = functions.findIndex((f) => f.paramsStart >= offset)
        if (owner < 0) return null
        const head = text.slice(offset, functions[owner].paramsStart)
        if (head.length > 200 || /[{};()=]/.test(head.replace(/\[[^\]]*\]/g, ''))) return null
      }
      return awaits.filter((a) => a.owner === owner).map((a) => siteOf(a.token))
    },
  }
}
