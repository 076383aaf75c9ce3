// Package codec turns protocol v1 frames (see docs/protocol.md) into bytes and
// back.
//
// Client frames are decoded with go-json into a Request. Server frames are
// appended by hand into caller-owned buffers, each already wrapped in its
// WebSocket header, because a fanned-out message is encoded exactly once and
// the same bytes then go to every member: the encoder is on the hot path, so
// it must be allocation-free and produce field order a reader can grep.
//
// Start with Request (request.go) and Frame (frame.go).
package codec
