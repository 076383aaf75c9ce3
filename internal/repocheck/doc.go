// Package repocheck holds checks on the repository itself rather than on
// the gateway's code. Its test fails when a file the repository tracks (or
// would track: untracked files that are not ignored) refers to documents
// outside the repository. People clone this repository on its own, so
// every reference must resolve inside it: the wire protocol is
// docs/protocol.md.
//
// The package has no code of its own; run it with go test ./internal/...
package repocheck
