// Package hub keeps who is connected and who is in which room, and fans
// room frames out to members, in seq order and batched per connection.
//
// Rooms live in lock-striped shards. A room's lock orders everything that
// must agree about it: storing a message (seq assignment), queueing it for
// fan-out, and a member's joined frame (join.go: a join whose history is
// read elsewhere is split around that read). Connections have no
// goroutine, timer or channel of their own.
//
// # Goroutines
//
// The hub runs its fan-out workers (one per CPU, fanout.go): they write to
// sockets and forward a split room's work to each other. Everything else
// runs on its caller's goroutine: Tick on the gateway's tick goroutine,
// Join, Publish and Broadcast on nbio's handlers or a backend's
// goroutines.
//
// # Locks
//
// Lock order, outermost first:
//
//   - registry.mu (a shard of the client registry: Tick, Each),
//   - roomShard.mu (a shard of the room map), then Room.mu,
//   - Client.mu (every write to a socket happens under it),
//   - Hub.closingMu (the closing and owed-reply queues).
//
// A fan-out worker's queue lock is taken under Room.mu and under nothing
// else. No lock is held while calling a caller's callback, except where
// the doc says so (Join, JoinEnd and Publish call theirs under Room.mu, so
// they must only do in-memory work).
package hub
