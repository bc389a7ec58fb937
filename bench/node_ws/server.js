// The seed protocol's fan-out on Node.js `ws`, a peer for `python -m bench`.
//
//   node server.js --port 8092 [--host 127.0.0.1] [--deflate]
//
// /ws: `connected` on open; {"type":"subscribe","channels":[...]} -> `subscribed`;
// unsubscribe -> `unsubscribed`; ping -> pong. POST /broadcast {type, data, channel?}
// sends {type, data, timestamp} to the channel's subscribers (every socket without a
// channel) and answers 200 after the loop, as the seed peer does. GET /health.
// Each broadcast is serialised once and the same string written to every socket, as
// one would write it with `ws`. permessage-deflate is off unless --deflate.
"use strict";
const http = require("http");
const crypto = require("crypto");
const { WebSocketServer } = require("ws");

const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const port = Number(arg("--port", "8092"));
const host = arg("--host", "127.0.0.1");

const sockets = new Set();
const channels = new Map(); // channel -> Set(ws)
const now = () => new Date().toISOString();
const json = (res, status, body) => {
  res.writeHead(status, { "Content-Type": "application/json" });
  res.end(JSON.stringify(body));
};
const byChannel = () =>
  Object.fromEntries([...channels].filter(([, s]) => s.size).map(([c, s]) => [c, s.size]));

const server = http.createServer((req, res) => {
  const path = req.url.split("?")[0].replace(/\/$/, "");
  if (req.method === "GET" && (path === "/health" || path === "/stats")) {
    const stats = { total: sockets.size, by_channel: byChannel() };
    return json(res, 200, path === "/stats" ? stats : { status: "healthy", service: "websocket-server", connections: stats });
  }
  if (req.method !== "POST" || path !== "/broadcast") return json(res, 404, { detail: "Not Found" });
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks));
    } catch {
      return json(res, 422, { detail: "invalid JSON" });
    }
    if (!body || typeof body.type !== "string") return json(res, 422, { detail: "type required" });
    const text = JSON.stringify({ type: body.type, data: body.data || {}, timestamp: now() });
    const targets = body.channel ? channels.get(body.channel) || [] : sockets;
    for (const ws of targets) if (ws.readyState === 1) ws.send(text);
    json(res, 200, { status: "sent" });
  });
});

const wss = new WebSocketServer({ server, path: "/ws", perMessageDeflate: process.argv.includes("--deflate") });
wss.on("connection", (ws) => {
  const subs = new Set();
  const reply = (type, data) => ws.send(JSON.stringify({ type, data, timestamp: now() }));
  sockets.add(ws);
  reply("connected", { connection_id: crypto.randomUUID() });
  ws.on("message", (raw) => {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    const list = Array.isArray(msg.channels) ? msg.channels : [];
    if (msg.type === "subscribe") {
      for (const c of list) {
        if (!channels.has(c)) channels.set(c, new Set());
        channels.get(c).add(ws);
        subs.add(c);
      }
      reply("subscribed", { channels: list });
    } else if (msg.type === "unsubscribe") {
      for (const c of list) channels.get(c)?.delete(ws), subs.delete(c);
      reply("unsubscribed", { channels: list });
    } else if (msg.type === "ping") {
      reply("pong", {});
    }
  });
  ws.on("close", () => {
    sockets.delete(ws);
    for (const c of subs) channels.get(c)?.delete(ws);
  });
});

server.listen(port, host);
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
