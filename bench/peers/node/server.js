// A broadcast chat server on the Node ws library, as its README writes one:
// every text message is sent to every open client, the sender included.
// One of the peers scripts/bench.sh --peers measures the gateway against
// (scripts/peers.sh installs it with npm ci into bin/peers/node).
//
//   node server.js [PORT [HOST]]      (or PORT=... HOST=... node server.js)
//
// Defaults: 127.0.0.1:8080. Any path upgrades; the harness uses /ws.
'use strict';

const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2] || process.env.PORT || 8080);
const host = process.argv[3] || process.env.HOST || '127.0.0.1';

const wss = new WebSocketServer({ port, host });

wss.on('connection', (ws) => {
  ws.on('error', () => {}); // a client that vanished; its close follows
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    wss.clients.forEach((c) => {
      if (c.readyState === WebSocket.OPEN) c.send(data, { binary: false });
    });
  });
});

wss.on('listening', () => {
  console.log(`ws ${require('ws/package.json').version} broadcast server on ${host}:${port}`);
});

process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
