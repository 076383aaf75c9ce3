// Package backend is the seam between a gateway node and where its rooms
// live: Backend is what the node asks of it (store and fan out a message,
// carry events, follow a room, read its history, keep presence), and the
// gateway package talks to nothing else. Memory, in this package, is a node
// alone: the hub and an embedded history store. The Redis implementation,
// shared by many nodes, is package cluster.
//
// Every call that may wait on I/O answers through a callback, so that no
// backend I/O runs on nbio's handler goroutines or under a room's lock.
// Memory calls its callbacks before returning; Redis calls them later, from
// its own goroutines (see package cluster). A callback must not block.
//
// conformance_test.go runs one suite over both implementations.
package backend
