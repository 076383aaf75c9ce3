// Package cluster makes several gateway nodes one chat through Redis.
//
// A room's messages are stored and published by one Lua script (see
// history.Redis): seq, history, idempotency key and PUBLISH in one step, so
// Redis's pub/sub order is seq order. On Redis Cluster the script publishes
// with SPUBLISH instead (sharded pub/sub, Config.Sharded): only the room's
// shard carries the message, and the node subscribes at the master that
// owns the room's slot, one subscription per bucket of rooms, following
// slot moves and failovers (shards.go). Every node, the sender's included,
// delivers a room's messages from its subscription, in that order, and
// fills any gap it sees (a missed message, a reconnect) from the history
// before going on. A node subscribes only to the rooms it has local members
// in, reference counted, with subscribe and unsubscribe calls batched.
//
// Node is the Redis implementation of backend.Backend. Nothing here runs
// on nbio's handler goroutines: publishes, history reads and presence go
// through a bounded queue to one pipelining goroutine (publisher), whose
// callbacks answer the callers; subscriptions are read by another
// (subscriber), which never waits on a Redis command either: the history
// reads it needs (a room's position, a gap to fill) go through the same
// queue and come back to it, while messages of that room are held.
//
// # Goroutines
//
// A Node runs four: health (pings Redis, reloads scripts, Ready), publisher
// (the only one that sends commands other than pings and subscriptions,
// pipelined; it runs the callbacks of Publish, Range and the presence
// calls), subscriber (reads the subscriptions, delivers into the hub in
// seq order, and runs Subscribe's callbacks; it also sends the
// subscription commands, and in the sharded mode asks the cluster who owns
// a slot and pings the subscriptions once a second) and presenceLoop
// (refreshes and sweeps presence entries), plus one per subscription (one,
// or one per bucket with local members in the sharded mode, at most 256)
// that hands what it receives to the subscriber. go-redis runs its own for its pools. With
// message hooks on, a HookSource (hooksource.go) adds one that holds the
// cluster's notifier lease; the hook package's sender calls its reads,
// which block on Redis, from its own goroutine.
//
// # Locks
//
// Node.mu guards the rooms map, references, readiness and waiters; the
// subscriber owns each room's position (last, epoch, held) and takes
// Node.mu only briefly. Node.readsMu guards the reads coming back to the
// subscriber. No lock of the node is held while calling into the hub or a
// callback.
package cluster
