package bench

import "testing"

func TestMergeStepsOfWorkers(t *testing.T) {
	whole := NewHistogram()
	var parts []Step
	for w := 0; w < 3; w++ {
		h := NewHistogram()
		for v := int64(1); v <= 1000; v++ {
			us := v*10 + int64(w)*5000
			h.Record(us)
			whole.Record(us)
		}
		parts = append(parts, Step{Conns: 100, Duration: float64(w + 1), Handshakes: 100, Delivered: 10,
			Expected: 12, Gaps: 1, BenchCPU: 0.5, GatewayRSS: 999, Latency: h.Summary()})
	}
	m := MergeSteps("all", parts)
	if m.Conns != 300 || m.Handshakes != 300 || m.Delivered != 30 || m.Expected != 36 || m.Gaps != 3 {
		t.Fatalf("counts not summed: %+v", m)
	}
	if m.Duration != 3 || m.BenchCPU != 1.5 || m.GatewayRSS != 0 {
		t.Fatalf("duration %v (want the longest, 3), bench CPU %v (want 1.5), RSS %d (want none)", m.Duration, m.BenchCPU, m.GatewayRSS)
	}
	want := whole.Summary()
	if m.Latency.Count != want.Count || m.Latency.P50 != want.P50 || m.Latency.P99 != want.P99 || m.Latency.Max != want.Max {
		t.Fatalf("merged latency %+v, want %+v", m.Latency, want)
	}
	if m.HandshakesPerSec() != 100 {
		t.Fatalf("handshakes/s %v, want 300 over 3 s", m.HandshakesPerSec())
	}
}
