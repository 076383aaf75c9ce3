// Package gateway is a chat edge node: it terminates WebSocket connections
// on nbio's event loop and speaks protocol v1 (docs/protocol.md) over them.
//
// # Files by concern
//
//   - server.go wires nbio, the hub, the backend and the admin listener;
//     admin.go and api.go are the admin listener and the server API.
//   - read.go is the read path every client byte takes: handshake.go,
//     upgrade.go and admit.go decide about a request before the upgrade
//     (per-address caps, header bytes, RFC 6455 checks, origin, token,
//     node caps), guard.go checks frames after it.
//   - session.go dispatches one connection's requests to their handlers;
//     join.go, publish.go and presence.go are the handlers that reach the
//     backend; order.go keeps a connection's requests in order when one
//     waits for the backend; expiry.go closes connections whose token ran
//     out.
//   - hooks.go wires the application's hooks (package hook, docs/hooks.md):
//     join and publish decisions, message, presence and disconnect
//     notifications, and the history the message notifier reads.
//   - closecode.go names every close code; drain.go shuts down gracefully;
//     log.go rate-limits log lines.
//
// Rooms, fan-out and connection bookkeeping live in package hub; where
// rooms live (stored messages, other nodes, presence) behind the interface
// of package backend: backend.Memory for a node alone, cluster.Node on
// Redis. The gateway package does not know which one it has.
//
// # Goroutines
//
// A connection has no goroutine, timer or channel of its own. The node runs:
//
//   - nbio's pollers, which read sockets and run read.go and guard.go, and
//     nbio's handler goroutines, which run a connection's frames one at a
//     time (session.go);
//   - Server.tick, one goroutine for everything periodic: heartbeats (a
//     registry shard per step), token expiry, stalled handshakes, log
//     flushes, the message rate sample;
//   - the admin listener's net/http goroutines (API calls, /metrics);
//   - the hub's fan-out workers (package hub);
//   - the backend's own: the memory store's sweeper, or the cluster's
//     health, publisher, subscriber and presence goroutines (package
//     cluster);
//   - with --hook-url, the hooks' decision workers and one sender per
//     notification event (package hook).
//
// # Callbacks off nbio's handlers
//
// A backend may answer later, from its own goroutines: in cluster mode a
// send's ack, a join's steps, a history page and a presence list are
// written by the cluster's publisher or subscriber goroutine. Such a reply
// is owed (hub.Client.OweLater) so that a close the node starts waits for
// it, and a request that waits (join, history, presence) holds the
// connection's later frames until its reply is written; they are then
// handled on the goroutine that wrote it (order.go). Nothing a backend
// calls back may block. The same holds for the application's join and
// publish decisions, answered on a hook worker goroutine.
//
// # Locks
//
// Lock order, outermost first: the hub's registry shard, a room shard, a
// Room, a Client, the hub's closing queue (see package hub). A session's
// order lock is never held while calling into the hub or the backend.
// Server.expiries and handshakes have locks of their own that are taken
// alone.
package gateway
