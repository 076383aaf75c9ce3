package hook

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"
)

// Event is one kind of hook call.
type Event uint8

// The events, in the order of a connection's life. EventConnect,
// EventJoin and EventPublish are decisions (Decide); EventMessage,
// EventPresence and EventDisconnect are notifications (Stored, Notify).
const (
	EventConnect Event = iota
	EventJoin
	EventPublish
	EventMessage
	EventPresence
	EventDisconnect
	numEvents
)

var eventNames = [numEvents]string{"connect", "join", "publish", "message", "presence", "disconnect"}

// String is the event's name, the last element of its URL path.
func (e Event) String() string {
	if e < numEvents {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", uint8(e))
}

// IsDecision reports whether the gateway waits for the application's answer
// to e (connect, join, publish).
func (e Event) IsDecision() bool { return e <= EventPublish }

// Events is a set of events.
type Events uint8

// EventsOf returns the set of evs.
func EventsOf(evs ...Event) Events {
	var s Events
	for _, e := range evs {
		s |= 1 << e
	}
	return s
}

// DefaultEvents is the set used when Config.Events is empty: only message
// notifications, which cost the chat path nothing (they are read from
// stored history by a goroutine of their own).
var DefaultEvents = EventsOf(EventMessage)

// Has reports whether e is in the set.
func (s Events) Has(e Event) bool { return e < numEvents && s&(1<<e) != 0 }

// String lists the set as ParseEvents reads it.
func (s Events) String() string {
	var names []string
	for e := Event(0); e < numEvents; e++ {
		if s.Has(e) {
			names = append(names, e.String())
		}
	}
	return strings.Join(names, ",")
}

// ParseEvents reads a comma-separated list of event names (spaces and
// repeats allowed, case ignored). An empty list is the empty set, which
// Config reads as DefaultEvents.
func ParseEvents(s string) (Events, error) {
	var set Events
	for name := range strings.SplitSeq(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		e, ok := eventByName(name)
		if !ok {
			return 0, fmt.Errorf("hook: unknown event %q (known: %s)", name, strings.Join(eventNames[:], ", "))
		}
		set |= 1 << e
	}
	return set, nil
}

func eventByName(name string) (Event, bool) {
	for e, n := range eventNames {
		if n == name {
			return Event(e), true
		}
	}
	return 0, false
}

// Config is the hooks' configuration. Zero fields take the defaults of
// DefaultConfig when New is called, so a Config with only URL set works.
type Config struct {
	// URL is the application's base URL; a call to event e is a POST to
	// URL/e. Empty: hooks off (the gateway then keeps a nil *Hooks).
	URL string
	// Events are the events called (empty: DefaultEvents).
	Events Events
	// Timeout bounds one HTTP call, answer read included (default 2s).
	Timeout time.Duration
	// Secret signs every body: X-Gateway-Signature: sha256=<hex HMAC>.
	// Empty: no signature header.
	Secret string
	// FailOpen: a decision whose call failed allows (the content
	// unchanged). False, the default ("closed"): it is Unavailable.
	FailOpen bool

	// Workers is how many decision calls run at once (default 64), and
	// DecideQueue how many more may wait for a worker (default 1024);
	// past that a decision gets the fail-mode outcome at once.
	Workers     int
	DecideQueue int

	// BatchMax is the most events a notification POST carries (default
	// 100), BatchWait how long the first event of a batch waits for
	// others (default 50ms).
	BatchMax  int
	BatchWait time.Duration
	// NotifyQueue bounds the presence and disconnect events held in
	// memory per event (default 10000); the oldest are dropped past it.
	NotifyQueue int
	// RetryMin and RetryMax bound the backoff between attempts to deliver
	// a batch while the endpoint fails: RetryMin, doubled per failure up to
	// RetryMax, with jitter (defaults 100ms and 30s).
	RetryMin time.Duration
	RetryMax time.Duration
	// Rescan is how often the message sender reads Source.Pending again
	// (0: only when it starts). Stored marks the rooms this node writes;
	// a rescan finds the others: rooms written by other nodes of a
	// cluster, or a Stored the gateway could not make.
	Rescan time.Duration
	// FlushTimeout is how long Close lets the notifiers deliver what they
	// hold (default 1s; negative: Close does not try).
	FlushTimeout time.Duration

	// Logger receives notification failures and recoveries, one line per
	// change of state (nil: none).
	Logger *slog.Logger
}

// Defaults, see Config.
const (
	DefaultTimeout      = 2 * time.Second
	DefaultWorkers      = 64
	DefaultDecideQueue  = 1024
	DefaultBatchMax     = 100
	DefaultBatchWait    = 50 * time.Millisecond
	DefaultNotifyQueue  = 10000
	DefaultRetryMin     = 100 * time.Millisecond
	DefaultRetryMax     = 30 * time.Second
	DefaultFlushTimeout = time.Second
)

// DefaultConfig returns the defaults, with no URL (hooks off).
func DefaultConfig() Config {
	return Config{
		Events:       DefaultEvents,
		Timeout:      DefaultTimeout,
		Workers:      DefaultWorkers,
		DecideQueue:  DefaultDecideQueue,
		BatchMax:     DefaultBatchMax,
		BatchWait:    DefaultBatchWait,
		NotifyQueue:  DefaultNotifyQueue,
		RetryMin:     DefaultRetryMin,
		RetryMax:     DefaultRetryMax,
		FlushTimeout: DefaultFlushTimeout,
	}
}

// withDefaults fills the zero fields.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	c.Events = cmp.Or(c.Events, d.Events)
	c.Timeout = cmp.Or(c.Timeout, d.Timeout)
	c.Workers = cmp.Or(c.Workers, d.Workers)
	c.DecideQueue = cmp.Or(c.DecideQueue, d.DecideQueue)
	c.BatchMax = cmp.Or(c.BatchMax, d.BatchMax)
	c.BatchWait = cmp.Or(c.BatchWait, d.BatchWait)
	c.NotifyQueue = cmp.Or(c.NotifyQueue, d.NotifyQueue)
	c.RetryMin = cmp.Or(c.RetryMin, d.RetryMin)
	c.RetryMax = cmp.Or(c.RetryMax, d.RetryMax)
	c.FlushTimeout = cmp.Or(c.FlushTimeout, d.FlushTimeout)
	return c
}

// MaxBatch is the largest BatchMax accepted: a batch is one request body
// held in memory while it is retried.
const MaxBatch = 10000

// Validate reports the first setting that cannot work. Zero values are
// valid (they mean the default); an empty URL is valid (hooks off).
func (c *Config) Validate() error {
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil {
			return fmt.Errorf("hook: URL %q: %v", c.URL, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("hook: URL %q: scheme must be http or https", c.URL)
		}
		if u.Host == "" {
			return fmt.Errorf("hook: URL %q: no host", c.URL)
		}
		if u.Fragment != "" {
			return fmt.Errorf("hook: URL %q: a fragment is not sent; remove it", c.URL)
		}
	}
	if c.Events>>numEvents != 0 {
		return fmt.Errorf("hook: events %#x: unknown event bits", uint8(c.Events))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", c.Timeout}, {"batch wait", c.BatchWait}, {"retry min", c.RetryMin}, {"retry max", c.RetryMax}, {"rescan", c.Rescan}} {
		if d.v < 0 {
			return fmt.Errorf("hook: %s %v is negative", d.name, d.v)
		}
	}
	if d := c.withDefaults(); d.RetryMin > d.RetryMax { // one may be the default
		return fmt.Errorf("hook: retry min %v is above retry max %v", d.RetryMin, d.RetryMax)
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"workers", c.Workers}, {"decide queue", c.DecideQueue}, {"batch max", c.BatchMax}, {"notify queue", c.NotifyQueue}} {
		if n.v < 0 {
			return fmt.Errorf("hook: %s %d is negative", n.name, n.v)
		}
	}
	if c.BatchMax > MaxBatch {
		return fmt.Errorf("hook: batch max %d is above %d", c.BatchMax, MaxBatch)
	}
	return nil
}

var errNoURL = errors.New("hook: no URL (hooks are off; keep a nil *Hooks)")
