package gateway

import "github.com/chatgw/gateway/codec"

// SetHandleHook sets the hook run before each request is handled, for the
// lifetime of the test binary (tests that use it do not run in parallel).
func SetHandleHook(f func(req *codec.Request)) { handleHook = f }

// Published returns how many messages the node has stored (clients and API).
func (s *Server) Published() int64 { return s.published.Load() }
