// Package bench is the gateway's load harness (run as cmd/wsbench) and the
// home of its in-process Go benchmarks.
//
// The harness drives a running gateway over real loopback sockets with an
// nbio client engine: no goroutine per connection, frames encoded once up
// front, dials bounded in flight and spread over several source addresses.
// Scenarios (idle, connect, fanout, ramp, dm, churn) produce a Result
// (result.go), which records the machine and gateway beside every figure.
// Fan-out loads can include slow readers (slow.go): raw sockets that join
// and never read, so that the others' latency shows what they cost;
// report.go renders results as Markdown and charts, plan.go turns them into a
// capacity plan.
//
// The same loads run against other servers (proto.go): Centrifugo's JSON
// protocol, or a plain broadcast server such as gorilla/websocket's chat
// example or a Node ws server; peers.go sets their results side by side with
// the gateway's (scripts/bench.sh --peers).
//
// The Go benchmarks (fanout_test.go) measure the hub's fan-out in-process,
// without sockets, so their allocation and batching figures are exact:
//
//	go test -run=NONE -bench=. -benchmem ./bench
package bench
