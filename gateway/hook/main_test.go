package hook

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a goroutine outlives its tests: Close
// must end every worker, sender and keep-alive connection the hooks
// started, or a gateway leaks them on every restart of its hooks.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.IgnoreCurrent()) }
