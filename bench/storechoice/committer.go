package storechoice

import (
	"errors"
	"sync"
	"sync/atomic"
)

// maxGroup caps how many appends one group commit takes.
const maxGroup = 1024

// committer is group commit for a store that allows one writer at a time
// (SQLite's single write connection; bbolt's single write transaction): a
// goroutine takes every append queued while the previous commit was on
// disk and writes them in one transaction with one fsync, then acks each.
// There is no timer: a lone writer commits at once, and a group grows only
// by what queued during the fsync before it, the way Pebble's WAL and most
// databases' logs group commits.
type committer struct {
	reqs    chan *request
	commit  func([]*Msg) error
	done    chan struct{}
	commits atomic.Int64
	closed  atomic.Bool
}

type request struct {
	m   *Msg
	err chan error
}

var reqPool = sync.Pool{New: func() any { return &request{err: make(chan error, 1)} }}

var errClosed = errors.New("store closed")

func newCommitter(commit func([]*Msg) error) *committer {
	c := &committer{
		reqs:   make(chan *request, maxGroup),
		commit: commit,
		done:   make(chan struct{}),
	}
	go c.loop()
	return c
}

// Append queues m and waits for the commit that carries it.
func (c *committer) Append(m *Msg) error {
	if c.closed.Load() {
		return errClosed
	}
	r := reqPool.Get().(*request)
	r.m = m
	c.reqs <- r
	err := <-r.err
	r.m = nil
	reqPool.Put(r)
	return err
}

func (c *committer) loop() {
	defer close(c.done)
	group := make([]*request, 0, maxGroup)
	msgs := make([]*Msg, 0, maxGroup)
	for first := range c.reqs {
		group = append(group[:0], first)
	drain:
		for len(group) < maxGroup {
			select {
			case r, ok := <-c.reqs:
				if !ok {
					break drain
				}
				group = append(group, r)
			default:
				break drain
			}
		}
		msgs = msgs[:0]
		for _, r := range group {
			msgs = append(msgs, r.m)
		}
		err := c.commit(msgs)
		c.commits.Add(1)
		for _, r := range group {
			r.err <- err
		}
	}
}

// Close stops the loop once the queued appends are committed; no Append
// may be running or start after it.
func (c *committer) Close() {
	c.closed.Store(true)
	close(c.reqs)
	<-c.done
}
