package gateway

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/chatgw/gateway/codec"
	"github.com/chatgw/gateway/gateway/cluster"
	"github.com/chatgw/gateway/gateway/hub"
)

// newRedisClient makes the UniversalClient of a --redis-url: redis:// or
// rediss:// (TLS) with user, password and /db. With ?master_name=NAME the
// host (and any ?addr=host:port) are Sentinels of that master; with only
// ?addr= parameters, more seed addresses of a Redis Cluster.
func newRedisClient(url string) (redis.UniversalClient, bool, error) {
	if strings.Contains(url, "master_name=") {
		o, err := redis.ParseFailoverURL(url)
		if err != nil {
			return nil, false, fmt.Errorf("gateway: --redis-url: %w", err)
		}
		return redis.NewFailoverClient(o), false, nil
	}
	if strings.Contains(url, "addr=") {
		o, err := redis.ParseClusterURL(url)
		if err != nil {
			return nil, false, fmt.Errorf("gateway: --redis-url: %w", err)
		}
		return redis.NewClusterClient(o), true, nil
	}
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, false, fmt.Errorf("gateway: --redis-url: %w", err)
	}
	if o.TLSConfig != nil {
		o.TLSConfig.MinVersion = tls.VersionTLS12
	}
	return redis.NewClient(o), false, nil
}

// startCluster links the node to the others through Redis.
func (s *Server) startCluster() error {
	c, isCluster, err := newRedisClient(s.cfg.RedisURL)
	if err != nil {
		return err
	}
	s.redis = c
	redis.SetLogger(redisLogger{s.log})
	s.cluster = cluster.New(cluster.Config{
		Client: c, NodeID: s.cfg.NodeID, Size: s.cfg.HistorySize, HistoryTTL: s.cfg.HistoryTTL,
		Cluster: isCluster, Log: s.log, PresenceRefresh: s.cfg.PresenceRefresh,
		// s.hub is made after the cluster link: read it when called.
		Rooms: func(fn func(string, []string)) { s.hub.EachRoom(fn) },
	}, clusterSink{s})
	s.store = s.cluster.Store()
	return nil
}

// clusterSink delivers what other nodes (and this one) published.
type clusterSink struct{ s *Server }

func (k clusterSink) Message(room string, seq uint64, frame []byte) {
	k.s.hub.Publish(room, func() ([]byte, uint64, bool) { return frame, seq, true })
}

func (k clusterSink) Event(room string, kind hub.Kind, frame []byte) {
	k.s.hub.Broadcast(room, frame, nil, kind)
}

func (k clusterSink) Offline(room, user string) {
	k.s.broadcastPresence(room, user, false, nil)
}

// Lost tells the room's members that its history was lost, as docs/protocol.md
// says: an unsolicited joined with the new epoch, recovered false and the
// room's current seq, from which the seq order continues.
func (k clusterSink) Lost(room string, latest uint64, epoch string) {
	j := codec.Joined{Room: room, Seq: latest, Epoch: epoch, Messages: [][]byte{}}
	frame := owned(func(b []byte) []byte { return codec.AppendJoined(b, &j) })
	k.s.hub.Reset(room, latest, frame)
}

// acquire makes sure the node receives room's messages before a member
// reads its history (cluster mode; a no-op alone).
func (s *Server) acquire(room string) error {
	if s.cluster == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return s.cluster.Acquire(ctx, room)
}

func (s *Server) release(room string) {
	if s.cluster != nil {
		s.cluster.Release(room)
	}
}

// broadcast sends a frame outside history to the room's members but
// exclude, on this node and, in cluster mode, on the others.
func (s *Server) broadcast(room string, frame []byte, exclude *hub.Client, kind hub.Kind) {
	s.hub.Broadcast(room, frame, exclude, kind)
	if s.cluster != nil {
		s.cluster.Event(room, kind, frame[codec.HeaderLen(frame):])
	}
}

// announce records that user came online in room (its first connection
// there joined) or went offline (its last one left), and tells the room
// when event says the room is within the presence cap. Alone that is all;
// in cluster mode the user's presence entry is recorded in Redis whatever
// the room's size (presence lists count every member), and the news is the
// cluster's: told only when no other node holds a connection of the user
// in the room, and when the room's entries across the cluster are within
// the cap too, as Redis tells (asynchronously).
func (s *Server) announce(room, user string, online bool, exclude *hub.Client, event bool) {
	if s.cluster == nil {
		if event {
			s.broadcastPresence(room, user, online, exclude)
		}
		return
	}
	max := s.hub.PresenceMaxMembers()
	done := func(elsewhere bool, entries int) {
		if event && !elsewhere && entries <= max {
			s.broadcastPresence(room, user, online, exclude)
		}
	}
	if online {
		s.cluster.PresenceJoin(room, user, done)
	} else {
		s.cluster.PresenceLeave(room, user, done)
	}
}

func (s *Server) broadcastPresence(room, user string, online bool, exclude *hub.Client) {
	ev := owned(func(b []byte) []byte { return codec.AppendPresenceEvent(b, room, user, online) })
	s.broadcast(room, ev, exclude, hub.KindPresence)
}

// presence lists room's users and calls done with up to presenceListMax
// of them and their count: this node's alone, at once; the cluster's from
// Redis, later and on the cluster's publisher goroutine.
func (s *Server) presence(room string, done func(users []string, total int, err error)) {
	if s.cluster == nil || codec.IsInbox(room) {
		users, total := s.hub.Presence(room, presenceListMax)
		done(users, total, nil)
		return
	}
	s.cluster.PresenceList(room, presenceListMax, done)
}
