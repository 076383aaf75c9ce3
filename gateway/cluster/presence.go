package cluster

import (
	"context"
	_ "embed"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Presence across nodes. A room's presence is two sorted sets under its
// hash tag: "p", members "user|node" scored by when the entry expires, and
// "pl", the same members at score 0 for finding a user's entries by prefix.
// A node adds its entry when a user's first local connection joins, removes
// it when the last one leaves, and refreshes its entries every
// PresenceRefresh to PresenceRefresh x 3 ahead: the entries of a node that
// died without cleaning up expire, and the node that sweeps them announces
// the users offline.

// presenceTTLFactor: entries live this many refresh periods.
const presenceTTLFactor = 3

func (n *Node) presenceKeys(room string) []string {
	rk := n.keys.RoomKey(room)
	return []string{rk + "p", rk + "pl"}
}

// othersLive is the shared Lua prefix in others_live.lua.
//
//go:embed others_live.lua
var othersLive string

// presenceJoinLua is in presence_join.lua (KEYS, ARGV and return value documented there).
//
//go:embed presence_join.lua
var presenceJoinLua string

var presenceJoin = redis.NewScript(othersLive + presenceJoinLua)

// presenceLeaveLua is in presence_leave.lua (KEYS, ARGV and return value documented there).
//
//go:embed presence_leave.lua
var presenceLeaveLua string

var presenceLeave = redis.NewScript(othersLive + presenceLeaveLua)

// presenceSweepLua is in presence_sweep.lua (KEYS, ARGV and return value documented there).
//
//go:embed presence_sweep.lua
var presenceSweepLua string

var presenceSweep = redis.NewScript(othersLive + presenceSweepLua)

func nowMs() int64 { return time.Now().UnixMilli() }

func (n *Node) presenceTTL() time.Duration { return presenceTTLFactor * n.cfg.PresenceRefresh }

// PresenceJoin records that user's first local connection joined room;
// done (on the publisher goroutine) learns whether the user was online in
// the room on another node already, and how many presence entries (one
// per user per node, expired ones until swept) the room has now. Skipped
// when Redis is down.
func (n *Node) PresenceJoin(room, user string, done func(elsewhere bool, entries int)) {
	now := nowMs()
	ttl := n.presenceTTL().Milliseconds()
	n.queue(job{room: room, run: func(ctx context.Context, p redis.Pipeliner) *redis.Cmd {
		return presenceJoin.EvalSha(ctx, p, n.presenceKeys(room), user, n.cfg.NodeID, now+ttl, now, 2*ttl)
	}, then: func(c *redis.Cmd) { presenceDone(c, done) }})
}

// PresenceLeave records that user's last local connection left room; done
// learns whether the user is still online there on another node, and how
// many presence entries the room had before.
func (n *Node) PresenceLeave(room, user string, done func(elsewhere bool, entries int)) {
	now := nowMs()
	n.queue(job{room: room, run: func(ctx context.Context, p redis.Pipeliner) *redis.Cmd {
		return presenceLeave.EvalSha(ctx, p, n.presenceKeys(room), user, n.cfg.NodeID, now)
	}, then: func(c *redis.Cmd) { presenceDone(c, done) }})
}

// presenceDone parses a join or leave script's {online elsewhere, entries}.
func presenceDone(c *redis.Cmd, done func(bool, int)) {
	v, err := c.Int64Slice()
	if err == nil && len(v) == 2 {
		done(v[0] == 1, int(v[1]))
	}
}

// PresenceList reads room's users online on any node and calls done (on
// the publisher goroutine) with up to max of them, sorted, and how many
// there are, or ErrUnavailable. The read is queued behind this node's
// presence writes, so a user whose join this node has answered is listed.
func (n *Node) PresenceList(room string, max int, done func(users []string, total int, err error)) {
	ok := n.queue(job{room: room, run: func(ctx context.Context, p redis.Pipeliner) *redis.Cmd {
		return p.Do(ctx, "ZRANGEBYSCORE", n.presenceKeys(room)[0], "("+strconv.FormatInt(nowMs(), 10), "+inf")
	}, then: func(c *redis.Cmd) {
		ms, err := c.StringSlice()
		if err != nil {
			done(nil, 0, ErrUnavailable)
			return
		}
		users, total := presenceUsers(ms, max)
		done(users, total, nil)
	}})
	if !ok {
		done(nil, 0, ErrUnavailable)
	}
}

// presenceUsers turns "user|node" entries into up to max distinct users,
// sorted, and their count.
func presenceUsers(ms []string, max int) ([]string, int) {
	seen := map[string]bool{}
	users := []string{}
	for _, m := range ms {
		if i := strings.LastIndexByte(m, '|'); i > 0 && !seen[m[:i]] {
			seen[m[:i]] = true
			users = append(users, m[:i])
		}
	}
	sort.Strings(users)
	total := len(users)
	if len(users) > max {
		users = users[:max]
	}
	return users, total
}

// presenceLoop refreshes this node's entries and sweeps expired ones in the
// rooms it has members in, every PresenceRefresh.
func (n *Node) presenceLoop() {
	defer n.wg.Done()
	t := time.NewTicker(n.cfg.PresenceRefresh)
	defer t.Stop()
	for {
		select {
		case <-n.stop:
			return
		case <-t.C:
		}
		if n.Ready() && n.cfg.Hub != nil {
			n.refreshPresence()
		}
	}
}

func (n *Node) refreshPresence() {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.PresenceRefresh)
	defer cancel()
	now := nowMs()
	ttl := n.presenceTTL().Milliseconds()
	exp := float64(now + ttl)
	pipe := n.cfg.Client.Pipeline()
	var rooms []string
	var sweeps []*redis.Cmd
	queued := 0
	flush := func() {
		if queued == 0 {
			return
		}
		_, _ = pipe.Exec(ctx)
		for i, c := range sweeps {
			users, err := c.StringSlice()
			if err != nil {
				continue
			}
			for _, u := range users {
				n.sink.Offline(rooms[i], u)
			}
		}
		rooms, sweeps, queued = rooms[:0], sweeps[:0], 0
	}
	n.cfg.Hub.EachRoom(func(room string, users []string) {
		if strings.HasPrefix(room, "@") {
			return // inboxes have no presence
		}
		keys := n.presenceKeys(room)
		for _, u := range users {
			me := u + "|" + n.cfg.NodeID
			pipe.ZAdd(ctx, keys[0], redis.Z{Score: exp, Member: me})
			pipe.ZAdd(ctx, keys[1], redis.Z{Score: 0, Member: me})
		}
		pipe.PExpire(ctx, keys[0], 2*time.Duration(ttl)*time.Millisecond)
		pipe.PExpire(ctx, keys[1], 2*time.Duration(ttl)*time.Millisecond)
		rooms = append(rooms, room)
		sweeps = append(sweeps, presenceSweep.EvalSha(ctx, pipe, keys, now))
		queued += 2*len(users) + 3
		if queued >= 1000 {
			flush()
		}
	})
	flush()
}

// loadPresenceScripts loads the presence scripts, for EVALSHA.
func loadPresenceScripts(ctx context.Context, c redis.UniversalClient) error {
	for _, s := range []*redis.Script{presenceJoin, presenceLeave, presenceSweep} {
		if err := s.Load(ctx, c).Err(); err != nil {
			return err
		}
	}
	return nil
}
