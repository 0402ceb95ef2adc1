// Accounts, DSNs and databases on the harness's servers: the accounts every instance gets, connections
// from a DSN, per-test databases, and servers given by env DSN instead of started here.
import mysql from 'mysql2/promise'
import {DatabaseUnavailableError} from './mariadb-install.js'
import type {MariaDbInstance} from './mariadb-server.js'

export const TEST_DATABASE = 'ferrydiag'

const ROOT_PASSWORD = 'ferrydiag-root'

export const REPLICATION_USER = 'ferry_repl'

const REPLICATION_PASSWORD = 'ferrydiag-repl'

export function buildDsn(user: string, password: string, host: string, port: number, database: string): string {
  return `mysql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${host}:${port}/${database}`
}

/** The DSNs of the accounts provision() creates, on a server at host:port. */
export function provisionedDsns(host: string, port: number): {adminDsn: string; replicationDsn: string; database: string} {
  return {
    adminDsn: buildDsn('root', ROOT_PASSWORD, host, port, TEST_DATABASE),
    replicationDsn: buildDsn(REPLICATION_USER, REPLICATION_PASSWORD, host, port, TEST_DATABASE),
    database: TEST_DATABASE,
  }
}

// Accounts over the socket as the passwordless root that mariadb-install-db created.
export async function provision(socket: string): Promise<void> {
  const conn = await mysql.createConnection({socketPath: socket, user: 'root', multipleStatements: true})
  try {
    await conn.query(`
      CREATE DATABASE IF NOT EXISTS ${TEST_DATABASE};
      CREATE USER 'root'@'%' IDENTIFIED BY '${ROOT_PASSWORD}';
      GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
      CREATE USER '${REPLICATION_USER}'@'%' IDENTIFIED BY '${REPLICATION_PASSWORD}';
      GRANT REPLICATION SLAVE, REPLICATION CLIENT, SELECT ON *.* TO '${REPLICATION_USER}'@'%';
      DROP USER IF EXISTS 'root'@'127.0.0.1';
      DROP USER IF EXISTS 'root'@'::1';
      FLUSH PRIVILEGES;
    `)
  } finally {
    await conn.end()
  }
}

/** Describes a server given by DSN (env override); it is not ours, so stop() does nothing. */
export async function describeExternal(adminDsn: string, replicationDsn: string): Promise<MariaDbInstance> {
  const url = new URL(adminDsn)
  const database = decodeURIComponent(url.pathname.replace(/^\//, '')) || TEST_DATABASE
  let serverId = 0
  try {
    const conn = await mysql.createConnection({
      host: url.hostname,
      port: url.port === '' ? 3306 : Number(url.port),
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      connectTimeout: 5000,
    })
    try {
      const [rows] = await conn.query('SELECT @@server_id AS id')
      serverId = Number((rows as Array<{id: number}>)[0]!.id)
      await conn.query(`CREATE DATABASE IF NOT EXISTS \`${database.replace(/`/g, '``')}\``)
    } finally {
      await conn.end()
    }
  } catch (error) {
    throw new DatabaseUnavailableError(`cannot use ${url.hostname}:${url.port} from env DSN: ${(error as Error).message}`, {cause: error})
  }
  return {
    host: url.hostname,
    port: url.port === '' ? 3306 : Number(url.port),
    socket: '',
    datadir: '',
    serverId,
    adminDsn,
    replicationDsn,
    database,
    external: true,
    pid: 0,
    stop: async () => {},
  }
}

/** Opens a mysql2 connection from a harness DSN (test convenience; the product uses src/mysql). */
export async function openConnection(dsn: string, options: {multipleStatements?: boolean} = {}): Promise<mysql.Connection> {
  const url = new URL(dsn)
  return mysql.createConnection({
    host: url.hostname,
    port: url.port === '' ? 3306 : Number(url.port),
    user: decodeURIComponent(url.username),
    password: decodeURIComponent(url.password),
    database: decodeURIComponent(url.pathname.replace(/^\//, '')) || undefined,
    multipleStatements: options.multipleStatements ?? false,
    connectTimeout: 5000,
  })
}

/** Creates a user with exactly the given privileges (e.g. 'SELECT ON *.*') and returns its DSN. */
export async function createUser(instance: MariaDbInstance, user: string, password: string, grants: string[]): Promise<string> {
  const conn = await openConnection(instance.adminDsn)
  try {
    await conn.query('CREATE OR REPLACE USER ?@? IDENTIFIED BY ?', [user, '%', password])
    for (const grant of grants) await conn.query(`GRANT ${grant} TO ?@?`, [user, '%'])
  } finally {
    await conn.end()
  }
  return buildDsn(user, password, instance.host, instance.port, instance.database)
}

/** The same DSN pointed at another database. */
export function withDatabase(dsn: string, name: string): string {
  const url = new URL(dsn)
  url.pathname = `/${name}`
  return url.toString()
}

/**
 * Creates database `name`, empty, on both servers (each test copies into its own: the pipeline starts at
 * the binlog's end and copies nothing that was there before) and returns admin DSNs pointing at it.
 */
export async function freshDatabase(source: MariaDbInstance, target: MariaDbInstance, name: string): Promise<{source: string; target: string}> {
  for (const instance of [source, target]) {
    const conn = await openConnection(instance.adminDsn)
    try {
      await conn.query(`DROP DATABASE IF EXISTS \`${name}\``)
      await conn.query(`CREATE DATABASE \`${name}\``)
    } finally {
      await conn.end()
    }
  }
  return {source: withDatabase(source.adminDsn, name), target: withDatabase(target.adminDsn, name)}
}
