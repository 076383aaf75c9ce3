// Package hook is the gateway's HTTP hooks to the application behind it:
// decisions the gateway waits for (may this user connect, join this room,
// publish this message?) and notifications it sends after the fact
// (messages, presence, disconnects).
//
// # The contract
//
// Every call is POST Config.URL/<event> with a JSON body and
// Content-Type: application/json. With Config.Secret set, the header
// X-Gateway-Signature: sha256=<hex HMAC-SHA256 of the body> signs it;
// receivers check it with Verify. Config.Events chooses the events called
// (ParseEvents reads "connect,join,publish,message,presence,disconnect";
// the default is message only).
//
// Decisions, EventConnect, EventJoin, EventPublish, with the bodies
// ConnectRequest, JoinRequest, PublishRequest:
//
//   - 200 allows (exactly 200: a 204 is "another status" below). For
//     publish, an answer {"text":"..."} and/or {"data":...} replaces the
//     message's content (absent fields, or an empty answer, leave it
//     unchanged). For connect, {"user":"...","rooms":["glob",...]} sets
//     the identity and the room globs (Decision.User, Decision.Rooms; the
//     gateway applies them).
//   - 403 refuses; {"reason":"..."} is the message for the client
//     (DefaultDenyReason when absent). A 403 stands even if its body is
//     unreadable.
//   - Anything else (a timeout after Config.Timeout, a connection error,
//     another status, a 200 answer that is not the documented object or is
//     over MaxAnswerBytes) is a failure, and Config.FailOpen decides:
//     allow unchanged, or (the default, "closed") Unavailable.
//
// Notifications, EventMessage, EventPresence, EventDisconnect, are
// batched: POST URL/<event> with {"events":[...]}, at most Config.BatchMax
// events, sent once BatchMax are waiting or Config.BatchWait after the
// first. Any 2xx delivers the batch; anything else is retried, the same
// batch, with backoff from Config.RetryMin doubling to Config.RetryMax with
// jitter. A batch is not sent before the previous one of its event was
// delivered, so each event's notifications arrive in order.
//
//   - message events (Message,
//     {"room","seq","ts","from","to"?,"text"?,"data"?}) are read from
//     stored history through a Source, from a per-room cursor persisted only after the batch was answered 2xx.
//     None is lost while history holds it, across failures and restarts
//     (one that history dropped first is skipped and counted in
//     gateway_hook_dropped_total); they are delivered at least once: what may be repeated is a batch
//     whose 2xx the gateway did not see (a timeout or dropped connection
//     after the application took it, Close's flush deadline, a crash
//     before the cursor was saved), and, if SetCursor fails, what followed
//     the last saved cursor when the node restarts. Receivers dedupe on
//     (room, seq). Within a room events are in seq order; a batch may hold
//     several rooms.
//   - presence and disconnect events (PresenceEvent, DisconnectEvent) are
//     best effort: an in-memory queue per event of Config.NotifyQueue,
//     dropping the oldest when full, lost when the node stops.
//
// # Using it
//
// New starts the hooks; a nil *Hooks is hooks off, and every method works
// on it. Decide(e, body, done) never blocks and calls done exactly once:
// later from one of Config.Workers goroutines after the HTTP call, or at
// once (event not enabled, queue of Config.DecideQueue full, closed).
// Stored(room, seq) is called by the gateway after each message is stored
// (rooms it did not report are found by Source.Pending, read at start and
// every Config.Rescan); Notify(e, ev) queues a presence or disconnect
// event. Close stops it all. HistoryRange and DecodeMessage help implement
// Source over a history.Store.
//
// In a cluster, every node runs its hooks over a Source shared through the
// cluster's store that also implements Leader: only the node holding its
// lease sends message events (the others ignore Stored, read nothing and
// report no cursor lag), so that each message is notified once per
// cluster, not once per node; the next holder resumes from the shared
// cursors.
//
// # Goroutines
//
// Config.Workers decision workers (only when a decision event is on) and
// one sender per notification event that is on. No goroutine, timer or
// channel per connection or per call: a decision is a job on a bounded
// channel, a notification an entry in a queue or a mark on a room. One
// http.Client, whose keep-alive connections are shared by all of them.
//
// # Metrics
//
// On the registry given to New: gateway_hook_calls_total{event,outcome},
// gateway_hook_duration_seconds{event}, gateway_hook_failures_total{event},
// gateway_hook_dropped_total{event}, gateway_hook_queue (notification
// events queued or in a batch being sent or retried) and
// gateway_hook_cursor_lag (messages stored but not yet notified, as far as
// this node knows: over the rooms Stored marked since their cursor was
// last caught up, and the rooms resumed at start once first read).
//
// # Locks
//
// Each feed has one lock, taken alone and only for in-memory work: Stored
// and Notify may be called under any of the gateway's locks. The decision
// queue's RWMutex only orders Decide against Close.
package hook
