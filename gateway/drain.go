package gateway

import (
	"context"
	"time"

	"github.com/chatgw/gateway/gateway/hub"
)

// Drain shuts the node down gracefully: /readyz and new upgrades answer 503
// at once, then every connection is sent a 1001 close, spread evenly over
// the first 80% of DrainTimeout so that clients do not all reconnect in the
// same instant; whatever is still open at DrainTimeout is dropped.
func (s *Server) Drain(ctx context.Context) error {
	s.draining.Store(true)
	start := time.Now()
	var all []*hub.Client
	s.hub.Each(func(c *hub.Client) { all = append(all, c) })
	s.log.Info("draining", "connections", len(all), "timeout", s.cfg.DrainTimeout)

	window := s.cfg.DrainTimeout * 8 / 10
	for i, c := range all {
		due := start.Add(time.Duration(int64(window) * int64(i) / int64(len(all))))
		if d := time.Until(due); d > time.Millisecond {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		c.Close(closeGoingAway, "node draining; reconnect elsewhere")
	}
	deadline := start.Add(s.cfg.DrainTimeout)
	for s.hub.Stats().Connections > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	left := s.hub.Stats().Connections
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.Shutdown(sctx)
	s.log.Info("drained", "dropped", left, "took", time.Since(start).Round(time.Millisecond))
	return err
}
