// Package attack holds tests that attack a real gateway process over raw
// TCP: each test builds cmd/gateway, starts it as a child process on free
// loopback ports, and sends it hand-made bytes (oversized or never-ending
// headers, floods of control frames, frames that lie about their length,
// malformed handshakes, storms of abnormal closes) the way a hostile client
// would, rather than through a well-behaved WebSocket library.
//
// There is one test per bound the gateway promises (header bytes, sockets
// per address, history memory, control-frame budget, log volume, RFC 6455
// strictness, loud startup failures). Each asserts the specific status code,
// close code or limit, reads the child's RSS from /proc and its metrics from
// the admin listener, and checks afterwards that the node is still healthy:
// /healthz answers 200, a fresh client gets its welcome frame, and the log
// holds no panic or stack trace.
//
// The default volumes keep the package well under a minute. The long
// variants (thousands of sockets, hundreds of megabytes of frames) run with
//
//	go test ./attack -attack.long
//
// FuzzRawStream writes fuzzed frame streams after a valid handshake to one
// gateway process shared by the whole fuzz run.
//
// Every target is 127.0.0.1; nothing here connects anywhere else.
package attack
