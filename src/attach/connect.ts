// Reach a Node inspector: GET /json/list with a bounded timeout (so a TCP service that never speaks
// HTTP fails fast), check that the answer is an inspector's, then open the CDP WebSocket.

import http from 'node:http'
import type CDP from 'chrome-remote-interface'

import {FerrydiagError} from '../errors.js'

/** Below this, an unanswered request says more about the budget than about the target, ms. */
const SHORTEST_CONCLUSIVE_WAIT_MS = 100

/** One entry of a Node inspector's /json/list. */
export interface InspectorListEntry {
  id: string
  type: string
  title: string
  url: string
  webSocketDebuggerUrl: string
}

export interface FetchTargetsOptions {
  host: string
  port: number
  /** Whole-request budget in milliseconds: connect, send, and read the full answer. */
  timeoutMs?: number
}

/** Default budget for /json/list; a live inspector answers in a few ms even on a loaded machine. */
export const DEFAULT_LIST_TIMEOUT_MS = 3000

/** Formats HOST:PORT with brackets around IPv6 literals. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

const tryInspectFlag = (where: string): string =>
  `Point --inspect at the port the target prints in "Debugger listening on ws://${where}/…", or use --pid to let ferrydiag find or open it.`

/**
 * Fetches and validates /json/list. Throws FerrydiagError connectRefused (nothing listening),
 * notInspector (something else answers, or nothing answers HTTP within timeoutMs).
 */
export async function fetchInspectorTargets(options: FetchTargetsOptions): Promise<InspectorListEntry[]> {
  const {host, port} = options
  const timeoutMs = options.timeoutMs ?? DEFAULT_LIST_TIMEOUT_MS
  const where = formatHostPort(host, port)
  const {status, body} = await getText(host, port, '/json/list', timeoutMs)

  if (status !== 200) {
    throw new FerrydiagError(
      'notInspector',
      `${where} answered HTTP ${status} to GET /json/list; expected a Node inspector's target list.`,
      tryInspectFlag(where),
    )
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    throw new FerrydiagError(
      'notInspector',
      `${where} answered GET /json/list with non-JSON (${describeBody(body)}); expected a Node inspector's target list.`,
      tryInspectFlag(where),
    )
  }
  const entries = Array.isArray(parsed) ? parsed.filter(isListEntry) : []
  if (entries.length === 0) {
    throw new FerrydiagError(
      'notInspector',
      `${where} answered GET /json/list with JSON that holds no webSocketDebuggerUrl (${describeBody(body)}); expected a Node inspector's target list.`,
      `${tryInspectFlag(where)} If a debugger (Chrome DevTools, VS Code) is already attached, that is fine: Node accepts several sessions.`,
    )
  }
  return entries
}

function isListEntry(value: unknown): value is InspectorListEntry {
  if (typeof value !== 'object' || value === null) return false
  const entry = value as Record<string, unknown>
  return typeof entry.webSocketDebuggerUrl === 'string' && /^wss?:\/\//.test(entry.webSocketDebuggerUrl)
}

function describeBody(body: string): string {
  const oneLine = body.replace(/\s+/g, ' ').trim()
  if (oneLine.length === 0) return 'empty body'
  return JSON.stringify(oneLine.length > 60 ? `${oneLine.slice(0, 60)}…` : oneLine)
}

/** A small GET that always settles within timeoutMs and leaves no socket behind. */
function getText(
  host: string,
  port: number,
  pathname: string,
  timeoutMs: number,
): Promise<{status: number; body: string}> {
  const where = formatHostPort(host, port)
  return new Promise((resolve, reject) => {
    let settled = false
    const finish = (error: FerrydiagError | null, result?: {status: number; body: string}): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      request.destroy()
      if (error) reject(error)
      else resolve(result!)
    }
    const request = http.request(
      // The Host header must be an IP literal (or localhost) or Node's inspector refuses the request
      // (DNS-rebinding guard); passing the literal host achieves that.
      {host, port, path: pathname, method: 'GET', headers: {accept: 'application/json'}, agent: false},
      (response) => {
        const chunks: Buffer[] = []
        let size = 0
        response.on('data', (chunk: Buffer) => {
          size += chunk.length
          // A target list is a few hundred bytes; anything huge is not an inspector.
          if (size > 1024 * 1024) {
            finish(
              new FerrydiagError(
                'notInspector',
                `${where} answered GET ${pathname} with more than 1 MiB; expected a Node inspector's target list.`,
                tryInspectFlag(where),
              ),
            )
            return
          }
          chunks.push(chunk)
        })
        response.on('end', () =>
          finish(null, {status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8')}),
        )
        response.on('error', (error) => finish(classifyRequestError(error, where)))
      },
    )
    const timer = setTimeout(
      () =>
        finish(
          // A budget shorter than a loaded machine's round trip proves nothing about the target: say it
          // was ours that ran out, not that the target is not an inspector.
          timeoutMs < SHORTEST_CONCLUSIVE_WAIT_MS
            ? new FerrydiagError(
                'evaluateTimeout',
                `No answer from ${where} to GET ${pathname} within the ${timeoutMs} ms budget (--timeout), too short to tell whether a Node inspector listens there.`,
                'Raise --timeout (e.g. --timeout 10s).',
              )
            : new FerrydiagError(
                'notInspector',
                `${where} accepted a connection but gave no HTTP answer to GET ${pathname} within ${timeoutMs} ms; expected a Node inspector.`,
                tryInspectFlag(where),
              ),
        ),
      timeoutMs,
    )
    request.on('error', (error) => finish(classifyRequestError(error, where)))
    request.end()
  })
}

function classifyRequestError(error: Error & {code?: string}, where: string): FerrydiagError {
  switch (error.code) {
    case 'ECONNREFUSED':
      return new FerrydiagError(
        'connectRefused',
        `Nothing is listening on ${where} (connection refused); expected a Node inspector there.`,
        'Start the target with --inspect=127.0.0.1:9229 (or pass the port it prints), or use --pid so ferrydiag opens the inspector with SIGUSR1.',
        {cause: error},
      )
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new FerrydiagError(
        'connectRefused',
        `Cannot reach ${where} (${error.code}); expected a Node inspector there.`,
        'Check the host part of --inspect; an inspector normally listens on 127.0.0.1.',
        {cause: error},
      )
    default:
      // Resets and HTTP parse errors (HPE_*) mean a non-HTTP service spoke first or hung up.
      return new FerrydiagError(
        'notInspector',
        `${where} does not speak HTTP like a Node inspector (${error.code ?? error.message}).`,
        tryInspectFlag(where),
        {cause: error},
      )
  }
}

export interface ConnectOptions extends FetchTargetsOptions {
  /** Budget for the WebSocket handshake after /json/list, in milliseconds. */
  handshakeTimeoutMs?: number
}

/** The opened CDP client plus which inspector target it is attached to. */
export interface InspectorConnection {
  client: CDP.Client
  target: InspectorListEntry
}

/**
 * Connects to the first target of the inspector at host:port (a Node process has exactly one).
 * Uses the bundled protocol description, so only /json/list and the WebSocket touch the network.
 */
export async function connectInspector(options: ConnectOptions): Promise<InspectorConnection> {
  const entries = await fetchInspectorTargets(options)
  const target = entries.find((entry) => entry.type === 'node') ?? entries[0]
  // Rebuild the URL from the address we reached: Node derives the advertised host from our Host
  // header, and IPv6 literals need brackets.
  const pathname = new URL(target.webSocketDebuggerUrl).pathname
  const webSocketUrl = `ws://${formatHostPort(options.host, options.port)}${pathname}`
  const where = formatHostPort(options.host, options.port)
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? DEFAULT_LIST_TIMEOUT_MS

  let timer: NodeJS.Timeout | undefined
  let timedOut = false
  // Loaded on first attach, not at start-up (keeps --help and flag errors fast).
  const {default: openCdp} = await import('chrome-remote-interface')
  const connecting = openCdp({target: webSocketUrl, local: true})
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true
      reject(
        new FerrydiagError(
          'notInspector',
          `${where} listed an inspector target but its WebSocket did not open within ${handshakeTimeoutMs} ms.`,
          'The target may be stalled in a long synchronous task; retry, or check it with `top`.',
        ),
      )
    }, handshakeTimeoutMs)
  })
  // A handshake that completes after we gave up must not leave a session open.
  connecting.then(
    (client) => {
      if (timedOut) client.close().catch(() => undefined)
    },
    () => undefined,
  )
  try {
    const client = await Promise.race([connecting, timeout])
    return {client, target}
  } catch (error) {
    if (error instanceof FerrydiagError) throw error
    const cause = error as Error & {code?: string}
    if (cause.code === 'ECONNREFUSED' || cause.code === 'ECONNRESET') {
      throw new FerrydiagError(
        'targetExited',
        `The inspector at ${where} went away during the WebSocket handshake (${cause.code}).`,
        'Check that the target process is still running, then retry.',
        {cause},
      )
    }
    throw new FerrydiagError(
      'notInspector',
      `${where} listed an inspector target but the WebSocket handshake failed: ${cause.message}.`,
      'Another tool may hold an exclusive session; close it or retry.',
      {cause},
    )
  } finally {
    clearTimeout(timer)
  }
}
