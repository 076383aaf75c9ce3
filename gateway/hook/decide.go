package hook

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"

	"github.com/goccy/go-json"
)

// Verdict is a decision's outcome.
type Verdict uint8

const (
	// Allow: go ahead (with Decision's replacements, if any).
	Allow Verdict = iota
	// Deny: the application refused; Decision.Reason says why, for the
	// client.
	Deny
	// Unavailable: the call failed and the fail mode is closed; the client
	// should be told to retry later (protocol code "unavailable").
	Unavailable
)

func (v Verdict) String() string {
	switch v {
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	case Unavailable:
		return "unavailable"
	}
	return fmt.Sprintf("verdict(%d)", uint8(v))
}

// DefaultDenyReason is Decision.Reason when a 403 carries no reason.
const DefaultDenyReason = "refused by the application"

// ErrQueueFull is the failure of a decision that found every worker busy
// and the queue full: it was never sent.
var ErrQueueFull = errors.New("hook: decision queue full")

// Decision is the application's answer to a connect, join or publish.
type Decision struct {
	Verdict Verdict
	// Reason is the application's reason for a Deny (DefaultDenyReason when
	// it gave none). It is the application's text, unchecked: the gateway
	// bounds it to what its error frame or close reason can carry.
	Reason string
	// Err is why the call failed when the verdict is the fail mode's
	// (Unavailable, or Allow under FailOpen); nil when the application
	// answered. For logs and metrics, not for clients.
	Err error

	// Publish, on Allow: the message's new text and data. nil: unchanged
	// (an absent or null field, an empty answer). The application may set
	// either or both; Data is valid JSON.
	Text *string
	Data json.RawMessage

	// Connect, on Allow: the connection's identity ("": unchanged) and the
	// room globs it may join (nil: unchanged; empty: none).
	User  string
	Rooms []string
}

// The request bodies of the decisions. The gateway may send other values
// to Decide; these are the documented shapes.
type (
	// ConnectRequest is the body of POST URL/connect, made before the
	// connection is welcomed.
	ConnectRequest struct {
		Node       string            `json:"node"`
		User       string            `json:"user"`                   // as authenticated by the token or ?user=
		RemoteAddr string            `json:"remote_addr"`            // the client's address as the node sees it
		Query      map[string]string `json:"query,omitempty"`        // upgrade query parameters, the token left out
		Claims     json.RawMessage   `json:"token_claims,omitempty"` // the token's claims, verbatim, when a token was used
	}
	// JoinRequest is the body of POST URL/join.
	JoinRequest struct {
		Node string `json:"node"`
		User string `json:"user"`
		Conn string `json:"conn"`
		Room string `json:"room"`
	}
	// PublishRequest is the body of POST URL/publish: a send, or a DM
	// (To set, Room the recipient's inbox).
	PublishRequest struct {
		Node string          `json:"node"`
		User string          `json:"user"`
		Conn string          `json:"conn"`
		Room string          `json:"room"`
		To   string          `json:"to,omitempty"`
		Text *string         `json:"text,omitempty"`
		Data json.RawMessage `json:"data,omitempty"`
	}
)

type job struct {
	e    Event
	body []byte
	done func(Decision)
}

// Decide asks the application about a connect, join or publish and calls
// done exactly once with the answer. body is encoded before Decide
// returns, so it may refer to buffers the caller reuses afterwards.
//
// The call runs on one of Config.Workers goroutines, never the caller's:
// done is called from that goroutine. When the answer is known without a
// call, done is called before Decide returns, on the caller's goroutine:
// e is not enabled or not a decision (Allow), the body does not encode,
// the hooks are closed, or the queue is full (the fail mode). done must
// not block: it runs on a worker that other connections wait for.
func (h *Hooks) Decide(e Event, body any, done func(Decision)) {
	if !h.Enabled(e) {
		done(Decision{Verdict: Allow})
		return
	}
	if !e.IsDecision() {
		done(Decision{Verdict: Allow, Err: fmt.Errorf("hook: %v is not a decision", e)})
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		h.m.call(e, outcomeError)
		done(h.failed(fmt.Errorf("hook: encoding the %v body: %w", e, err)))
		return
	}
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		done(h.failed(ErrClosed))
		return
	}
	select {
	case h.jobs <- job{e: e, body: b, done: done}:
		h.mu.RUnlock()
		return
	default:
	}
	h.mu.RUnlock()
	h.m.call(e, outcomeQueueFull)
	h.m.drop(e, 1)
	done(h.failed(ErrQueueFull))
}

// failed is the fail mode's decision.
func (h *Hooks) failed(err error) Decision {
	if h.cfg.FailOpen {
		return Decision{Verdict: Allow, Err: err}
	}
	return Decision{Verdict: Unavailable, Err: err}
}

func (h *Hooks) worker() {
	defer h.wg.Done()
	// Close closes jobs after canceling dctx: the jobs still queued then
	// fail at once, in call, rather than being sent.
	for j := range h.jobs {
		j.done(h.call(j))
	}
}

// call makes a decision's HTTP call and reads the answer.
func (h *Hooks) call(j job) Decision {
	if h.dctx.Err() != nil {
		h.m.call(j.e, outcomeError)
		return h.failed(ErrClosed)
	}
	status, answer, err := h.post(h.dctx, j.e, j.body)
	switch {
	case status == http.StatusForbidden:
		// A refusal stands even when its body cannot be read: failing it
		// would let FailOpen turn a deny into an allow.
		h.m.call(j.e, outcomeDeny)
		return Decision{Verdict: Deny, Reason: denyReason(answer)}
	case err != nil:
		h.m.call(j.e, outcomeError)
		return h.failed(err)
	case status != http.StatusOK:
		h.m.call(j.e, outcomeError)
		return h.failed(errStatus(j.e, status))
	}
	d, err := allowed(j.e, answer)
	if err != nil {
		h.m.call(j.e, outcomeError)
		return h.failed(err)
	}
	h.m.call(j.e, outcomeAllow)
	return d
}

// denyReason reads a 403's {"reason":"..."}; anything else is no reason.
func denyReason(answer []byte) string {
	var a struct {
		Reason string `json:"reason"`
	}
	if json.Unmarshal(answer, &a) != nil || a.Reason == "" {
		return DefaultDenyReason
	}
	return a.Reason
}

// allowed reads a 200's answer. Join's is ignored. For connect and publish
// an empty answer changes nothing, and one that is not the documented
// object is a failed call: the application meant something the gateway
// cannot tell.
func allowed(e Event, answer []byte) (Decision, error) {
	d := Decision{Verdict: Allow}
	if e == EventJoin || len(bytes.TrimSpace(answer)) == 0 {
		return d, nil
	}
	var a struct {
		User  string          `json:"user"`
		Rooms []string        `json:"rooms"`
		Text  *string         `json:"text"`
		Data  json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(answer, &a); err != nil {
		return d, fmt.Errorf("hook: %v answer is not the documented JSON object: %v", e, err)
	}
	switch e {
	case EventConnect:
		d.User, d.Rooms = a.User, a.Rooms
	case EventPublish:
		d.Text = a.Text
		if len(a.Data) > 0 && string(a.Data) != "null" {
			d.Data = a.Data
		}
	}
	return d, nil
}
