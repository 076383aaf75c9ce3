package hook

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestParseEvents: names in any case and spacing, repeats allowed, the
// empty list empty (Config then uses the default), and an unknown name is
// an error that names it.
func TestParseEvents(t *testing.T) {
	for in, want := range map[string]Events{
		"":                              0,
		"message":                       EventsOf(EventMessage),
		" Connect, join ,publish,join ": EventsOf(EventConnect, EventJoin, EventPublish),
		"connect,join,publish,message,presence,disconnect": EventsOf(EventConnect, EventJoin, EventPublish,
			EventMessage, EventPresence, EventDisconnect),
		"presence,,disconnect": EventsOf(EventPresence, EventDisconnect),
	} {
		got, err := ParseEvents(in)
		if err != nil || got != want {
			t.Errorf("ParseEvents(%q) = %v, %v; want %v", in, got, err, want)
		}
		if again, _ := ParseEvents(got.String()); again != got {
			t.Errorf("%q does not read back: %q", in, got.String())
		}
	}
	_, err := ParseEvents("join,joined,message")
	if err == nil || !strings.Contains(err.Error(), `"joined"`) {
		t.Errorf("unknown event: %v", err)
	}
	if DefaultConfig().Events != EventsOf(EventMessage) {
		t.Error("default events")
	}
}

// TestValidate: zero values and an empty URL are valid; each bad setting
// is refused with an error naming it.
func TestValidate(t *testing.T) {
	ok := []Config{{}, DefaultConfig(), {URL: "https://app.example/hooks?k=v", Events: EventsOf(EventJoin)}}
	for _, c := range ok {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	for want, c := range map[string]Config{
		"scheme":       {URL: "ftp://app.example"},
		"no host":      {URL: "http:///x"},
		"fragment":     {URL: "http://app.example/#x"},
		"unknown":      {Events: 1 << 7},
		"timeout":      {Timeout: -time.Second},
		"batch wait":   {BatchWait: -1},
		"retry min":    {RetryMin: time.Minute, RetryMax: time.Second},
		"retry max":    {RetryMin: time.Minute}, // above the default max
		"workers":      {Workers: -1},
		"batch max":    {BatchMax: MaxBatch + 1},
		"notify queue": {NotifyQueue: -5},
	} {
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v", want, err)
		}
		if _, err := New(c, newMemSource(), nil); err == nil && c.URL != "" {
			t.Errorf("%s: New accepts it", want)
		}
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Error("New without URL")
	}
	if _, err := New(Config{URL: "http://app.example"}, nil, nil); err == nil || !strings.Contains(err.Error(), "Source") {
		t.Errorf("message notifications without a Source: %v", err)
	}
}

// TestMetricsRegistered: every documented series is on the registry, with
// the enabled events' series at zero from the start.
func TestMetricsRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	start(t, Config{URL: refusedURL(t), Events: EventsOf(EventJoin, EventMessage)}, newMemSource(), reg)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, f := range fams {
		names[f.GetName()] = len(f.GetMetric())
	}
	for name, series := range map[string]int{
		"gateway_hook_calls_total":      4 + 2, // join: allow, deny, error, queue_full; message: ok, error
		"gateway_hook_duration_seconds": 2,
		"gateway_hook_failures_total":   2,
		"gateway_hook_dropped_total":    2,
		"gateway_hook_queue":            1,
		"gateway_hook_cursor_lag":       1,
	} {
		if names[name] != series {
			t.Errorf("%s: %d series, want %d", name, names[name], series)
		}
	}
}
