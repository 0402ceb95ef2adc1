// Throwaway binlog-enabled MariaDB instances for tests: each has its own datadir, port, socket and
// server-id, and is shut down (and its datadir removed) when stopped or when the test process ends.
//
// Using your own servers instead: set FERRYDIAG_TEST_SOURCE_DSN and FERRYDIAG_TEST_TARGET_DSN (both
// `mysql://user:pass@host:port/db`, an account allowed to create tables, read SHOW MASTER STATUS and
// stream the binlog) and startSourceAndTarget() returns those instead of starting anything;
// FERRYDIAG_TEST_SOURCE_REPLICATION_DSN optionally names a separate replication account (default: the
// source DSN). Tests that need a specially configured server (e.g. STATEMENT binlog format) still call
// startMariaDb() and so still need a local mariadbd.
//
// Tests use databaseOrSkip()/sharedDatabase(): when no database can be had the test is skipped with the
// reason, except with env CI set, where it fails with that reason.
//
// This module is the harness's front: it starts pairs and decides skip-or-fail; the pieces live in
// mariadb-install.ts (binaries), mariadb-server.ts (one instance's lifecycle) and mariadb-accounts.ts
// (accounts, DSNs, databases).

import type {TestContext} from 'node:test'
import {describeExternal} from './mariadb-accounts.js'
import {startMariaDb, type MariaDbInstance, type StartMariaDbOptions} from './mariadb-server.js'

export {DatabaseUnavailableError, ensureMariaDbInstalled, type MariaDbInstallation} from './mariadb-install.js'
export {startMariaDb, type MariaDbInstance, type StartMariaDbOptions} from './mariadb-server.js'
export {createUser, freshDatabase, openConnection, REPLICATION_USER, TEST_DATABASE, withDatabase} from './mariadb-accounts.js'

export interface SourceAndTarget {
  source: MariaDbInstance
  target: MariaDbInstance
  stop(): Promise<void>
}

/** A source and a target server: the env DSNs when both are set, else two fresh local instances. */
export async function startSourceAndTarget(options: StartMariaDbOptions = {}): Promise<SourceAndTarget> {
  const sourceDsn = process.env.FERRYDIAG_TEST_SOURCE_DSN
  const targetDsn = process.env.FERRYDIAG_TEST_TARGET_DSN
  if (sourceDsn && targetDsn) {
    const source = await describeExternal(sourceDsn, process.env.FERRYDIAG_TEST_SOURCE_REPLICATION_DSN || sourceDsn)
    const target = await describeExternal(targetDsn, targetDsn)
    return {source, target, stop: async () => {}}
  }
  const source = await startMariaDb({...options, name: 'source'})
  let target: MariaDbInstance
  try {
    target = await startMariaDb({...options, name: 'target'})
  } catch (error) {
    await source.stop()
    throw error
  }
  return {
    source,
    target,
    stop: async () => {
      await Promise.all([source.stop(), target.stop()])
    },
  }
}

/**
 * Awaits a database; when it cannot be had: with env CI set, throws (the test fails with the reason),
 * otherwise skips the test with the reason and returns undefined.
 */
export async function databaseOrSkip<T>(t: TestContext, acquire: Promise<T> | (() => Promise<T>)): Promise<T | undefined> {
  try {
    return await (typeof acquire === 'function' ? acquire() : acquire)
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    if (process.env.CI) {
      throw new Error(`database required in CI but unavailable: ${reason}`, {cause: error})
    }
    t.skip(`no database: ${reason}`)
    return undefined
  }
}

/**
 * One server (or pair) shared by the tests of a file, started on first use:
 *   const db = sharedDatabase(() => startSourceAndTarget()); after(() => db.stop())
 *   it('...', async (t) => { const pair = await db.get(t); if (!pair) return; ... })
 */
export function sharedDatabase<T extends {stop(): Promise<void>}>(start: () => Promise<T>): {
  get(t: TestContext): Promise<T | undefined>
  stop(): Promise<void>
} {
  let started: Promise<T> | undefined
  return {
    get: (t) => databaseOrSkip(t, (started ??= start())),
    stop: async () => {
      if (started === undefined) return
      const value = await started.catch(() => undefined)
      await value?.stop()
    },
  }
}
