// Package bench holds the gateway's Go benchmarks: measurements of the hot
// paths (fan-out, encoding) that run in-process, without sockets, so their
// allocation and batching figures are exact and repeatable. The package has
// no code of its own; see the _test.go files, and run them with
//
//	go test -run=NONE -bench=. -benchmem ./bench
package bench
