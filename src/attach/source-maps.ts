// Maps await sites in compiled JavaScript (file:///…/dist/x.js:L:C) back to the TypeScript that tsc
// compiled them from, using the .js.map next to the file and Node's own decoder (node:module SourceMap).

import {readFileSync, statSync} from 'node:fs'
import {SourceMap, type SourceMapPayload} from 'node:module'
import path from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

import type {StackFrame} from '../model/snapshot.js'

/** Largest generated file or map read (bytes): bigger ones are left unmapped rather than read into memory. */
const MAX_FILE_BYTES = 64 * 1024 * 1024

/** A loaded map (or the knowledge that a file has none). */
interface LoadedMap {
  map: SourceMap
  /** URL the map's `sources` are relative to (the map file itself, or the .js for an inline map). */
  baseUrl: URL
  sourceRoot: string
}

export interface SourceMapper {
  /** Returns the original location of a frame, or the frame unchanged when no map covers it. */
  mapFrame(frame: StackFrame): StackFrame
  /** Frames mapped so far and distinct generated files that had a usable map. */
  readonly stats: {framesMapped: number; filesWithMap: number}
}

/**
 * A mapper for frames whose url is a file on this machine (file:// URL or absolute path). Maps are
 * read lazily, once per file, synchronously (a dump has a handful of distinct files). A file with no
 * map, an unreadable map or a position the map does not cover keeps its frame as it was.
 */
export function createSourceMapper(): SourceMapper {
  const cache = new Map<string, LoadedMap | null>()
  const stats = {framesMapped: 0, filesWithMap: 0}

  const loadFor = (filePath: string): LoadedMap | null => {
    if (cache.has(filePath)) return cache.get(filePath)!
    const loaded = loadSourceMap(filePath)
    cache.set(filePath, loaded)
    if (loaded) stats.filesWithMap += 1
    return loaded
  }

  // Thousands of tasks share a handful of await sites: answer each distinct site once (null: unmapped).
  const bySite = new Map<string, StackFrame | null>()

  const mapSite = (frame: StackFrame): StackFrame | null => {
    const filePath = toLocalPath(frame.url)
    // Lines and columns are 1-based in a StackFrame; 0 means "not known".
    if (filePath === null || frame.line < 1 || frame.column < 1) return null
    const loaded = loadFor(filePath)
    if (!loaded) return null
    const line0 = frame.line - 1
    const entry = loaded.map.findEntry(line0, frame.column - 1) as Partial<SourceMapEntryShape>
    // findEntry answers with the nearest earlier mapping, which may belong to another line: only a
    // mapping on the frame's own line says where this code came from.
    if (entry.generatedLine !== line0 || entry.originalSource === undefined || entry.originalLine === undefined) {
      return null
    }
    return {
      functionName: frame.functionName,
      url: resolveOriginalUrl(loaded, entry.originalSource),
      line: entry.originalLine + 1,
      column: (entry.originalColumn ?? 0) + 1,
    }
  }

  const cachedSite = (frame: StackFrame): StackFrame | null => {
    const key = `${frame.line}:${frame.column}:${frame.url}`
    let mapped = bySite.get(key)
    if (mapped === undefined) {
      mapped = mapSite(frame)
      bySite.set(key, mapped)
    }
    return mapped
  }

  return {
    stats,
    mapFrame(frame: StackFrame): StackFrame {
      const mapped = cachedSite(frame)
      if (mapped === null) return frame
      stats.framesMapped += 1
      const result: StackFrame = {...mapped, functionName: frame.functionName}
      // How the line was found stays with it; await candidates are mapped one by one (unmapped ones as they were).
      if (frame.lineOf !== undefined) result.lineOf = frame.lineOf
      if (frame.awaitCandidates !== undefined) {
        result.awaitCandidates = frame.awaitCandidates.map((site) => {
          const original = cachedSite({...frame, ...site})
          return original === null ? site : {line: original.line, column: original.column}
        })
      }
      return result
    },
  }
}

/** The fields of SourceMap#findEntry's answer that are used here (all 0-based). */
interface SourceMapEntryShape {
  generatedLine: number
  generatedColumn: number
  originalSource: string
  originalLine: number
  originalColumn: number
}

/** file:///abs/x.js or /abs/x.js → /abs/x.js; anything else (node:, http:, eval, 'index 1') → null. */
export function toLocalPath(url: string): string | null {
  if (url.startsWith('file://')) {
    try {
      return fileURLToPath(url)
    } catch {
      return null
    }
  }
  return path.isAbsolute(url) ? url : null
}

/**
 * Finds and parses the map of one generated file: the file's own `//# sourceMappingURL=` comment
 * (a relative path or an inline base64 data: URL), else `FILE.map` next to it, as tsc writes it.
 */
function loadSourceMap(filePath: string): LoadedMap | null {
  const fileText = readSmallFile(filePath)
  if (fileText === null) return null
  const fileUrl = pathToFileURL(filePath)
  const reference = findSourceMappingUrl(fileText)

  let payloadText: string | null = null
  let baseUrl = fileUrl
  if (reference?.startsWith('data:')) {
    const comma = reference.indexOf(',')
    const header = reference.slice(0, comma)
    const body = reference.slice(comma + 1)
    payloadText = header.endsWith(';base64') ? Buffer.from(body, 'base64').toString('utf8') : decodeURIComponent(body)
  } else {
    const mapUrl = reference === null ? new URL(`${fileUrl.href}.map`) : safeUrl(reference, fileUrl)
    if (mapUrl === null || mapUrl.protocol !== 'file:') return null
    payloadText = readSmallFile(fileURLToPath(mapUrl))
    baseUrl = mapUrl
  }
  if (payloadText === null) return null
  try {
    const payload = JSON.parse(payloadText) as SourceMapPayload
    if (payload.version !== 3 || !Array.isArray(payload.sources) || typeof payload.mappings !== 'string') return null
    return {map: new SourceMap(payload), baseUrl, sourceRoot: payload.sourceRoot ?? ''}
  } catch {
    return null
  }
}

/** The last sourceMappingURL comment of a script, if any. */
function findSourceMappingUrl(text: string): string | null {
  const matches = [...text.slice(-4096 * 4).matchAll(/\/\/[#@] sourceMappingURL=(\S+)\s*$/gm)]
  return matches.length === 0 ? null : matches[matches.length - 1]![1]!
}

function resolveOriginalUrl(loaded: LoadedMap, source: string): string {
  const root = loaded.sourceRoot === '' || loaded.sourceRoot.endsWith('/') ? loaded.sourceRoot : `${loaded.sourceRoot}/`
  return safeUrl(root + source, loaded.baseUrl)?.href ?? source
}

function safeUrl(text: string, base: URL): URL | null {
  try {
    return new URL(text, base)
  } catch {
    return null
  }
}

function readSmallFile(filePath: string): string | null {
  try {
    const stat = statSync(filePath)
    if (!stat.isFile() || stat.size > MAX_FILE_BYTES) return null
    return readFileSync(filePath, 'utf8')
  } catch {
    return null
  }
}
