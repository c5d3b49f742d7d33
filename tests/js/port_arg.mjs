// `--port N` of the tests' Node servers (embeddings_server.mjs, pglite_server.mjs): 0 when absent (an
// ephemeral port); anything but 0..65535 ends the process with status 2.
export function parsePort(argv) {
  const i = argv.indexOf("--port");
  if (i < 0) return 0;
  const port = Number(argv[i + 1]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`--port expects 0..65535, got ${argv[i + 1]}`);
    process.exit(2);
  }
  return port;
}
