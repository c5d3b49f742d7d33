// PostgreSQL with pgvector for the tests, where Debian 12 has no pgvector: PGlite (PostgreSQL compiled
// to WebAssembly, in this process, in memory) with its pgvector extension, served over PostgreSQL's
// wire protocol by @electric-sql/pglite-socket, so that agente-hibrido's libpq talks to it as to any
// server. Pinned in package-lock.json. For tests/integration/test_rag_pgvector.py.
//
// Usage: node tests/js/pglite_server.mjs [--port N]   (0 or absent: an ephemeral port)
// Listens on 127.0.0.1 only and prints "PORT <n>" on stdout once it accepts connections (the
// readiness line, as embeddings_server.mjs does). One database ("postgres"); no authentication
// (pglite-socket asks for no password). Several connections share PGlite's one session: pglite-socket
// runs one query at a time and keeps a connection's transaction to itself until it ends.
import { PGlite } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { parsePort } from "./port_arg.mjs";

// Connections at once: a test's two servers with their dirty workers' threads, and psql.
const MAX_CONNECTIONS = 64;

const db = await PGlite.create({ extensions: { vector } });
const server = new PGLiteSocketServer({ db, port: parsePort(process.argv), host: "127.0.0.1", maxConnections: MAX_CONNECTIONS });
server.addEventListener("error", (e) => console.error("pglite-socket:", e.detail ?? e));
await server.start();
const conn = server.getServerConn();   // "127.0.0.1:PORT"
console.log(`PORT ${conn.slice(conn.lastIndexOf(":") + 1)}`);

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, async () => {
    await server.stop();
    await db.close();
    process.exit(0);
  });
}
