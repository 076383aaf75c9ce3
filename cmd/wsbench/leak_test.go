package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives its tests: every
// node a test starts (nbio's pollers and handlers, the hub's workers, the
// tick, the backend's goroutines, go-redis's) must be gone after its
// Shutdown, or a node leaks goroutines on every restart in production too.
// What runs before the tests is not theirs: nbio's websocket package makes
// a default engine, with two pool goroutines, when it is initialised.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }
