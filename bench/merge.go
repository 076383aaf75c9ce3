package bench

import (
	"syscall"
)

// MergeSteps combines one step measured by several worker processes at the
// same time into one: counts and CPU add up, the duration is the longest,
// latencies merge exactly through their histogram snapshots, and memory
// figures (per process) are left out.
func MergeSteps(label string, parts []Step) Step {
	out := Step{Label: label}
	var lats []*Latency
	for _, p := range parts {
		out.Conns += p.Conns
		out.Duration = max(out.Duration, p.Duration)
		out.TargetRate += p.TargetRate
		out.Sent += p.Sent
		out.Expected += p.Expected
		out.Delivered += p.Delivered
		out.Gaps += p.Gaps
		out.Duplicates += p.Duplicates
		out.Errors += p.Errors
		out.Handshakes += p.Handshakes
		out.BenchCPU += p.BenchCPU
		if p.Latency != nil {
			lats = append(lats, p.Latency)
		}
	}
	if len(lats) > 0 {
		out.Latency = MergeLatencies(lats...)
	}
	return out
}

// FilesPerProcess returns how many sockets one harness process may open,
// leaving room for the process's other files.
func FilesPerProcess() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return 1 << 20
	}
	return max(1, int(r.Cur)-256)
}
