package bench

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
)

// Machine describes where a result was measured; every figure carries it.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemBytes  int64  `json:"mem_bytes"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go"`
	Host      string `json:"host"`
}

// ThisMachine reads the machine's description from /proc.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	m.Host, _ = os.Hostname()
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if kb := procField("/proc/meminfo", "MemTotal:"); kb > 0 {
		m.MemBytes = kb * 1024
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// procField returns the first number after key in a /proc file of
// "Key: value kB" lines, or 0.
func procField(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// ProcessRSS returns the resident memory of process pid in bytes.
func ProcessRSS(pid int) int64 {
	return procField("/proc/"+strconv.Itoa(pid)+"/status", "VmRSS:") * 1024
}

// ProcessCPU returns the user+system CPU seconds process pid has used.
func ProcessCPU(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// SockStat returns the kernel's TCP sockets in use and their memory in
// pages, from /proc/net/sockstat.
func SockStat() (inuse, memPages int64) {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "TCP:"); ok {
			f := strings.Fields(rest)
			for i := 0; i+1 < len(f); i += 2 {
				n, _ := strconv.ParseInt(f[i+1], 10, 64)
				switch f[i] {
				case "inuse":
					inuse = n
				case "mem":
					memPages = n
				}
			}
		}
	}
	return inuse, memPages
}

// KernelSlab returns the kernel's slab memory in bytes (/proc/meminfo
// "Slab:", reclaimable and unreclaimable), or 0 when it cannot be read.
// Every socket's tcp_sock, inode, dentry, file and epoll item are slab
// objects. It is the whole host's, so anything else running there moves it
// too.
func KernelSlab() int64 {
	return procField("/proc/meminfo", "Slab:") * 1024
}

// LoadAvg returns the 1-minute load average from /proc/loadavg (0 if
// unknown).
func LoadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// GitCommit returns the short commit of the work tree at dir, or "".
func GitCommit(dir string) string {
	out, err := exec.Command("git", "-C", dir, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}
