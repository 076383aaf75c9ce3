package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// MaxAnswerBytes bounds the answer body read from the application: a
// larger answer is a failed call, so that a misbehaving endpoint cannot
// make the node buffer without limit.
const MaxAnswerBytes = 64 << 10

// ErrClosed is the failure of a call refused or cut short by Close.
var ErrClosed = errors.New("hook: closed")

// Hooks calls the application behind the gateway. A nil *Hooks is valid
// and means hooks off: Enabled is false, Decide allows at once, Stored and
// Notify do nothing, Close returns.
type Hooks struct {
	cfg       Config
	urls      [numEvents]string
	client    *http.Client
	transport *http.Transport
	log       *slog.Logger
	m         *metrics

	// Decisions: a fixed pool of workers takes jobs from a bounded queue.
	// mu guards closed against a Decide racing Close's close(jobs).
	mu     sync.RWMutex
	closed bool
	jobs   chan job
	dctx   context.Context // canceled by Close: in-flight decisions fail fast
	dstop  context.CancelFunc

	// Notifications: one sender goroutine per notification event.
	senders []*sender
	stop    chan struct{}   // closed by Close: senders make a last attempt and stop
	nctx    context.Context // canceled FlushTimeout after Close: the last attempt's deadline
	nstop   context.CancelFunc
	msgs    *messageFeed // nil unless EventMessage is in Events
	queues  [numEvents]*queueFeed

	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New starts the hooks: cfg.URL must be set (an empty URL means hooks off,
// for which the gateway keeps a nil *Hooks). src is the stored history
// that message notifications are read from; it is required when
// cfg.Events has EventMessage and unused otherwise. reg receives the hooks'
// metrics (nil: none).
func New(cfg Config, src Source, reg *prometheus.Registry) (*Hooks, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.URL == "" {
		return nil, errNoURL
	}
	cfg = cfg.withDefaults()
	if cfg.Events.Has(EventMessage) && src == nil {
		return nil, errors.New("hook: message notifications need a Source")
	}
	base, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, err
	}
	h := &Hooks{cfg: cfg, stop: make(chan struct{}), log: cfg.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	for e := Event(0); e < numEvents; e++ {
		h.urls[e] = base.JoinPath(e.String()).String() // keeps a query string, if any
	}

	// One client for every call, so that connections to the application
	// are kept alive and reused: enough idle ones for every worker and
	// sender, since they all talk to the same host.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = cfg.Workers + int(numEvents)
	t.MaxIdleConns = t.MaxIdleConnsPerHost
	h.transport = t
	// A redirect is an answer the contract does not have: it fails the call
	// instead of being followed (a POST followed by a GET).
	h.client = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}

	// The senders exist before the metrics that read them are registered;
	// their goroutines start last.
	if cfg.Events.Has(EventMessage) {
		h.msgs = newMessageFeed(src, h)
		h.addSender(EventMessage, h.msgs)
	}
	for _, e := range []Event{EventPresence, EventDisconnect} {
		if cfg.Events.Has(e) {
			h.queues[e] = newQueueFeed(cfg.NotifyQueue)
			h.addSender(e, h.queues[e])
		}
	}
	h.m = newMetrics(reg, cfg.Events, h.backlog, h.cursorLag)

	h.dctx, h.dstop = context.WithCancel(context.Background())
	h.nctx, h.nstop = context.WithCancel(context.Background())
	if cfg.Events&EventsOf(EventConnect, EventJoin, EventPublish) != 0 {
		h.jobs = make(chan job, cfg.DecideQueue)
		h.wg.Add(cfg.Workers)
		for range cfg.Workers {
			go h.worker()
		}
	}
	h.wg.Add(len(h.senders))
	for _, s := range h.senders {
		go h.run(s)
	}
	return h, nil
}

// Enabled reports whether event e is called. The gateway may skip building
// a body, or waiting at all, when it is not.
func (h *Hooks) Enabled(e Event) bool { return h != nil && h.cfg.Events.Has(e) }

// Close stops the hooks and returns once every goroutine they started has
// ended. Decisions waiting for a worker, or in flight, end at once with the
// fail-mode outcome (Err: ErrClosed); Decide after Close does the same. The
// notifiers make a last attempt to deliver what they hold, within
// Config.FlushTimeout, unless they are backing off from a failure; message
// events they could not deliver stay behind the stored cursor for the next
// start. Close must not be called from a done callback.
func (h *Hooks) Close() {
	if h == nil {
		return
	}
	h.closeOnce.Do(func() {
		h.dstop() // first: what a worker takes from now on fails at once
		h.mu.Lock()
		h.closed = true
		if h.jobs != nil {
			close(h.jobs)
		}
		h.mu.Unlock()
		var flush *time.Timer
		if h.cfg.FlushTimeout > 0 {
			flush = time.AfterFunc(h.cfg.FlushTimeout, h.nstop)
		} else {
			h.nstop()
		}
		close(h.stop)
		h.wg.Wait()
		if flush != nil {
			flush.Stop()
		}
		h.nstop()
		// Idle keep-alive connections have goroutines of their own.
		h.transport.CloseIdleConnections()
	})
}

// post makes one call: POST URL/e with body, signed, within Timeout and
// ctx. It returns the status and the answer body, or the failure.
func (h *Hooks) post(ctx context.Context, e Event, body []byte) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.urls[e], bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if h.cfg.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(h.cfg.Secret, body))
	}
	start := time.Now()
	defer func() { h.m.took(e, time.Since(start)) }()
	res, err := h.client.Do(req)
	if err != nil {
		return 0, nil, h.callErr(ctx, err)
	}
	defer res.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(res.Body, MaxAnswerBytes+1))
	if err != nil {
		return res.StatusCode, nil, fmt.Errorf("hook: reading the answer (HTTP %d): %w", res.StatusCode, h.callErr(ctx, err))
	}
	if len(answer) > MaxAnswerBytes {
		return res.StatusCode, nil, fmt.Errorf("hook: answer (HTTP %d) over %d bytes", res.StatusCode, MaxAnswerBytes)
	}
	return res.StatusCode, answer, nil
}

// callErr names why a call failed: a timeout and Close read better than
// the transport's wrapping of a canceled context. ctx is the call's own,
// under Timeout; its parent is canceled only by Close.
func (h *Hooks) callErr(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("hook: timeout after %v", h.cfg.Timeout)
	case ctx.Err() != nil:
		return ErrClosed
	}
	return fmt.Errorf("hook: %w", err)
}

func errStatus(e Event, status int) error { return fmt.Errorf("hook: %v answered HTTP %d", e, status) }
