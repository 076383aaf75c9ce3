package main

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chatgw/gateway/bench"
)

// nodeLimits are the limits a gateway announces in its welcome frame.
type nodeLimits struct {
	MaxMessageBytes int     `json:"max_message_bytes"`
	Rate            float64 `json:"rate"`
	Burst           int     `json:"burst"`
	MaxRooms        int     `json:"max_rooms"`
}

// readLimits connects once and reads the node's limits from its welcome.
func readLimits(addr string, timeout time.Duration) (nodeLimits, error) {
	d := websocket.Dialer{HandshakeTimeout: timeout}
	ws, _, err := d.Dial("ws://"+addr+"/ws?user=wsbench-probe", nil)
	if err != nil {
		return nodeLimits{}, fmt.Errorf("reading the node's limits: %w", err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(timeout))
	var w struct {
		Type   string     `json:"type"`
		Limits nodeLimits `json:"limits"`
	}
	if err := ws.ReadJSON(&w); err != nil || w.Type != "welcome" {
		return nodeLimits{}, fmt.Errorf("reading the node's limits: no welcome (%v)", err)
	}
	return w.Limits, nil
}

// checkLimits refuses a scenario the node's limits would break, naming the
// gateway flags to change: a run that gets its clients closed with 4002 or
// 1009 measures the limits, not the node.
func checkLimits(name string, l nodeLimits, fp bench.FanoutParams, pairs int, rate float64) error {
	var problems []string
	perSender := 0.0
	switch name {
	case "fanout", "churn", "storm":
		if fp.Publishers > 0 {
			perSender = fp.Rate / float64(fp.Publishers)
		}
	case "dm":
		if pairs > 0 {
			perSender = rate / float64(2*pairs)
		}
	}
	if l.Rate > 0 && perSender > l.Rate {
		problems = append(problems, fmt.Sprintf("each sender would send %.1f msgs/s, over the node's rate limit of %.1f/s (gateway --rate, --burst)", perSender, l.Rate))
	}
	// A message frame is the text plus ~100 bytes of JSON around it.
	if l.MaxMessageBytes > 0 && fp.Payload+100 > l.MaxMessageBytes {
		problems = append(problems, fmt.Sprintf("--payload %d does not fit the node's %d-byte messages (gateway --max-message-bytes)", fp.Payload, l.MaxMessageBytes))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s would exceed the node's limits: %s", name, strings.Join(problems, "; "))
	}
	return nil
}

// unclean counts what a run lost, delivered out of order (gaps) or twice,
// over every step but a ramp's last (a ramp stops at the first step that
// loses or passes its bound, by design).
func unclean(name string, res *bench.Result) error {
	var lost, gaps, dups int64
	steps := res.Steps
	if name == "ramp" && len(steps) > 0 {
		steps = steps[:len(steps)-1]
	}
	for i := range steps {
		lost += steps[i].Lost()
		gaps += steps[i].Gaps
		dups += steps[i].Duplicates
	}
	if lost+gaps+dups == 0 {
		return nil
	}
	return fmt.Errorf("the run was not clean: %d deliveries lost, %d out of order, %d duplicated (see the table; a node that closed clients with 4002 or 4001 needs other limits)", lost, gaps, dups)
}

// scenarioUsage prints only the flags that apply to scenario name: the
// common ones, and those whose help names the scenario.
func scenarioUsage(fs *flag.FlagSet, name string, common map[string]bool) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: wsbench %s [flags]\n\n", name)
		fs.VisitAll(func(f *flag.Flag) {
			scope, _, scoped := strings.Cut(f.Usage, ": ")
			if !common[f.Name] && (!scoped || strings.Contains(scope, " ") || !slices.Contains(strings.Split(scope, "/"), name)) {
				return
			}
			fmt.Fprintf(w, "  --%s", f.Name)
			if def := f.DefValue; def != "" && def != "false" && def != "0" {
				fmt.Fprintf(w, " (default %s)", def)
			}
			fmt.Fprintf(w, "\n    \t%s\n", f.Usage)
		})
	}
}
