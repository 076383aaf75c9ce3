package history

import (
	"strconv"
	"strings"
)

// Layout names a room's Redis keys and pub/sub channel. Every key of a
// room and its channel share one hash tag, so that on Redis Cluster the
// append script, which touches them all and publishes, runs on one shard.
//
// The classic layout tags each room with its own name: "gw:{room}:s". The
// sharded layout (Redis Cluster with sharded pub/sub) tags a room with the
// tag of its bucket, one of Buckets, instead: "gw:{tag}:r:room:s". A node
// subscribes with one connection per hash slot (see cluster), so rooms
// sharing a few slots keep that to Buckets connections per node however
// many rooms it serves, where one slot per room would take up to 16,384.
// Bucket b's tag hashes to slot b*SlotsPerBucket exactly, so buckets are
// spread evenly over the slot space and masters with equal slot ranges
// get equal shares of the rooms.
//
// Changing the layout, Buckets or the bucket hash moves every room's keys:
// history stored under the other layout is not read.
type Layout struct {
	Sharded bool
}

// Buckets is the number of hash slots the sharded layout spreads rooms over.
const Buckets = 256

// SlotsPerBucket is the slot distance between two buckets' tags.
const SlotsPerBucket = 16384 / Buckets

// bucketTags[b] is a hash tag whose slot is b*SlotsPerBucket.
var bucketTags = func() [Buckets]string {
	var tags [Buckets]string
	found := 0
	for n := 0; found < Buckets; n++ {
		tag := "b" + strconv.Itoa(n)
		s := Slot(tag)
		if s%SlotsPerBucket == 0 && tags[s/SlotsPerBucket] == "" {
			tags[s/SlotsPerBucket] = tag
			found++
		}
	}
	return tags
}()

// Bucket returns the bucket of room in the sharded layout.
func Bucket(room string) int {
	return int(fnv(room) % Buckets) // FNV-1a, as the disk store's shards
}

// RoomKey is the prefix of room's keys.
func (l Layout) RoomKey(room string) string {
	if l.Sharded {
		return "gw:{" + bucketTags[Bucket(room)] + "}:r:" + room + ":"
	}
	return RoomKey(room)
}

// Channel is room's pub/sub channel.
func (l Layout) Channel(room string) string { return l.RoomKey(room) + "c" }

// RoomOf returns the room of a key of the layout that ends with suffix
// (a channel: "c"; a seq key: "s"), or false.
func (l Layout) RoomOf(key, suffix string) (string, bool) {
	rest, ok := strings.CutPrefix(key, "gw:{")
	if !ok {
		return "", false
	}
	if l.Sharded {
		_, rest, ok = strings.Cut(rest, "}:r:")
		if !ok {
			return "", false
		}
		return strings.CutSuffix(rest, ":"+suffix)
	}
	return strings.CutSuffix(rest, "}:"+suffix)
}

// SeqPattern is a SCAN pattern that matches every room's seq key.
func (l Layout) SeqPattern() string {
	if l.Sharded {
		return "gw:{b*}:r:*:s"
	}
	return "gw:{*}:s"
}

// Slot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of its hash
// tag, the part between the first "{" and the next "}" when that is not
// empty, else of the whole key, modulo 16384 (the cluster specification's
// algorithm; go-redis keeps its own copy internal).
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}
