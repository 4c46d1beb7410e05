// Prints N free TCP ports on 127.0.0.1, one a line (run.sh gives them to PostgreSQL and
// the services). Usage: node lib/free-ports.js N
'use strict';

const net = require('node:net');

function listen() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

async function main() {
  const servers = [];
  for (let i = 0; i < Number(process.argv[2] || 1); i++) servers.push(await listen());
  console.log(servers.map((s) => s.address().port).join('\n'));
  for (const s of servers) s.close();
}

main().catch((err) => { console.error(err); process.exit(1); });
