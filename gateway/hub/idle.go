package hub

// IfIdle runs drop if no room called name is live (no members, no publish
// or join in progress), and holds the room's shard while it runs, so no
// join or publish can start on that room until drop returns. It reports
// whether drop ran. The history store uses it to forget a room only when
// no member could have seen the seq it is about to restart.
func (h *Hub) IfIdle(name string, drop func()) bool {
	s := h.shard(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rooms[name] != nil {
		return false
	}
	drop()
	return true
}
