package bench

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestKernelBytesPerSocket(t *testing.T) {
	const kB = 1024
	for _, c := range []struct {
		name                              string
		prevSlab, prevSockets, slab, sock int64
		want                              float64
	}{
		// The committed idle run's sockets (gateway and clients on one
		// host): 2,003 to 10,003 in use; the slab grew 28,000 kB.
		{"both grew", 140_000 * kB, 2003, 168_000 * kB, 10_003, 28_000 * kB / 8000.0},
		{"clients elsewhere: one socket per connection", 140_000 * kB, 3, 143_800 * kB, 1003, 3800 * kB / 1000.0},
		{"slab shrank (reclaim)", 140_000 * kB, 2003, 139_000 * kB, 10_003, 0},
		{"slab unchanged", 140_000 * kB, 2003, 140_000 * kB, 10_003, 0},
		{"sockets unchanged", 140_000 * kB, 2003, 150_000 * kB, 2003, 0},
		{"sockets fewer", 140_000 * kB, 2003, 150_000 * kB, 1003, 0},
		{"slab unreadable before", 0, 2003, 150_000 * kB, 10_003, 0},
		{"slab unreadable now", 140_000 * kB, 2003, 0, 10_003, 0},
		{"sockstat unreadable before", 140_000 * kB, 0, 150_000 * kB, 10_003, 0},
	} {
		if got := kernelBytesPerSocket(c.prevSlab, c.prevSockets, c.slab, c.sock); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// procMeminfoSlab reads Slab from /proc/meminfo on its own, in bytes.
func procMeminfoSlab(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Skipf("no /proc/meminfo: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "Slab:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Skip("/proc/meminfo has no Slab line")
	return 0
}

func TestKernelSlab(t *testing.T) {
	want := procMeminfoSlab(t)
	got := KernelSlab()
	// The slab moves between the two readings: within 10%.
	if got <= 0 || got < want*9/10 || got > want*11/10 {
		t.Errorf("KernelSlab() = %d, /proc/meminfo says %d", got, want)
	}
}

// IdleSteps records the kernel's readings at the baseline and at every
// step, and each step's bytes per socket from them. grow opens nothing
// here (the host's sockets are left alone), so only the recording is
// checked, not the figure.
func TestIdleStepsKernel(t *testing.T) {
	procMeminfoSlab(t)
	var grown []int
	res, err := IdleSteps(os.Getpid(), []int{1, 3, 2, 5}, 0, func(n int) error { grown = append(grown, n); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) != 4 || len(grown) != 3 {
		t.Fatalf("steps %+v, grown to %v; want the baseline and 1, 3, 5", res.Steps, grown)
	}
	for i, s := range res.Steps {
		if s.KernelSlab <= 0 {
			t.Errorf("step %q: no slab reading", s.Label)
		}
		if i == 0 {
			if s.Label != "0" || s.KernelBytesPerSocket != 0 {
				t.Errorf("baseline %+v", s)
			}
			continue
		}
		p := res.Steps[i-1]
		if want := kernelBytesPerSocket(p.KernelSlab, p.SocketsInUse, s.KernelSlab, s.SocketsInUse); s.KernelBytesPerSocket != want {
			t.Errorf("step %q: %v bytes/socket, want %v from its readings", s.Label, s.KernelBytesPerSocket, want)
		}
	}
}

func TestStepKernelJSON(t *testing.T) {
	b, err := json.Marshal(Step{Label: "5000", Conns: 5000, KernelSlab: 172_032_000, KernelBytesPerSocket: 3510.86})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"kernel_slab_bytes":172032000`, `"kernel_bytes_per_socket":3510.86`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	if b, _ := json.Marshal(Step{Label: "0"}); strings.Contains(string(b), "kernel_") {
		t.Errorf("zero kernel figures not omitted: %s", b)
	}
}
