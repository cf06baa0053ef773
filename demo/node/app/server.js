'use strict';
// demo-node: the demo service as a Node.js team writes it (see demo/node/README.md).
//   GET /healthz  200 when the database answers this release's query; 503 when it
//                 does not (schema too old); v2 and v3 then answer 500 (their bug)
//   GET /livez    200 while the process runs
//   GET /version  APP_VERSION
//   GET /users    JSON list of users
// Environment: APP_VERSION (baked into the image), DATABASE_URL, PORT (8080).
const http = require('node:http');
const { Client } = require('pg');

// What each release reads and how it misbehaves; a query that fails means
// the schema this release needs is not in place.
const RELEASES = {
  v1: { probe: 'SELECT id, email, created_at FROM users ORDER BY id LIMIT 1' },
  v2: { probe: 'SELECT id, email, nickname FROM users ORDER BY id LIMIT 1',
        readinessBug: 'v2 bug: nickname lookup fails' },
  v3: { probe: 'SELECT id, discount_cents FROM orders ORDER BY id LIMIT 1',
        readinessBug: 'v3 bug: discount lookup fails' },
};

const version = process.env.APP_VERSION || '';
const release = RELEASES[version];
const port = Number(process.env.PORT || 8080);

function log(msg) {
  console.log(`${new Date().toISOString()} demo-node ${version} ${msg}`);
}

async function query(sql) {
  if (!process.env.DATABASE_URL) throw new Error('DATABASE_URL is not set');
  const client = new Client({ connectionString: process.env.DATABASE_URL, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

async function ready() {
  try {
    await query(release.probe);
  } catch (e) {
    return [503, `schema or database not ready for ${version}: ${e.message}`];
  }
  if (release.readinessBug) return [500, release.readinessBug];
  return [200, `ok: ${version}`];
}

async function handle(req, res) {
  const path = (req.url || '/').split('?')[0];
  let status = 404;
  let body = 'not found\n';
  if (path === '/healthz') {
    const [s, msg] = await ready();
    status = s; body = msg + '\n';
  } else if (path === '/livez') {
    status = 200; body = 'alive\n';
  } else if (path === '/version') {
    status = 200; body = version + '\n';
  } else if (path === '/users') {
    try {
      body = JSON.stringify(await query('SELECT id, email, created_at FROM users ORDER BY id')) + '\n';
      status = 200;
    } catch (e) {
      status = 503; body = JSON.stringify({ error: e.message }) + '\n';
    }
  }
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(body);
  log(`${req.socket.remoteAddress} GET ${req.url} ${status}${status === 200 ? '' : ' "' + body.trim() + '"'}`);
}

if (!release) {
  log(`unknown APP_VERSION '${version}' (known: ${Object.keys(RELEASES).join(', ')})`);
  process.exit(1);
}
const server = http.createServer((req, res) => { handle(req, res).catch((e) => { res.writeHead(500); res.end(String(e) + '\n'); }); });
server.listen(port, () => log(`listening on :${port}`));
process.on('SIGTERM', () => { log('SIGTERM received, shutting down'); server.close(() => process.exit(0)); });
