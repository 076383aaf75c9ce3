// Package history stores each room's recent messages, assigns their seq, and
// remembers idempotency keys. Store is the contract; Memory is the embedded
// default (a bounded ring per room, an epoch fresh per process), Redis the
// cluster's (Lua scripts in the .lua files beside it, run whole by Redis,
// and queued on a caller's pipeline by Queue and QueueRange).
//
// # Goroutines and locks
//
// Memory runs one goroutine, its sweeper (expired keys, idle rooms, the
// byte cap). Its rooms live in lock-striped shards; a shard's lock is held
// only for in-memory work and is the innermost lock of the node, taken
// under the hub's Room lock (Append inside hub.Publish, a drop inside
// hub.IfIdle). Redis runs none: each call
// is a round trip on the caller's goroutine, which is why the node calls
// it only from the cluster's own goroutines (package cluster).
package history
