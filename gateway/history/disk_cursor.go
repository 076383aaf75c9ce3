package history

import (
	"encoding/binary"
	"fmt"
)

// Per-room cursors: how far a reader of the store outside the node's
// clients has got in a room (the hook notifier's last notified seq, see
// package hook). They live in the store's database, beside the messages
// they point into, so that they survive a restart with them.
//
// A cursor record is "c" room -> seq (8 bytes, big-endian) then the room's
// epoch when it was saved. "c" is a prefix of its own: the scans of
// messages ("m"), room records ("r": roomNames, so Rooms, Sweep and the
// retention passes) and idempotency keys ("k") never meet it, and Export
// and Import read only "m" and "r" records of the one room they move (an
// imported room has no cursor: a reader starts it from its first message).

// cursorKey is room's cursor record.
func cursorKey(room string) []byte { return append([]byte{'c'}, room...) }

// Cursor returns the seq SetCursor saved for room, or 0 when none was, or
// when it was saved in another epoch of the room's history: the seqs it
// named are not the ones the room holds now.
func (d *Disk) Cursor(room string) (uint64, error) {
	if d.closed.Load() {
		return 0, errClosed
	}
	v, ok, err := d.db.get(cursorKey(room))
	if err != nil || !ok {
		return 0, err
	}
	if len(v) < 8 {
		return 0, nil // not a record this code wrote: start the room over
	}
	epoch, err := d.epochOnDisk(room)
	if err != nil || string(v[8:]) != epoch {
		return 0, err
	}
	return binary.BigEndian.Uint64(v), nil
}

// SetCursor saves seq as room's cursor, in the room's current epoch. The
// write is not fsynced: a cursor lost in a machine crash only makes its
// reader read again what it had read (its readers are at-least-once), and
// an fsync per cursor would cost every append sharing the disk.
func (d *Disk) SetCursor(room string, seq uint64) error {
	if d.closed.Load() {
		return errClosed
	}
	if err := checkRoomName(room); err != nil {
		return err
	}
	epoch, err := d.epochOnDisk(room)
	if err != nil {
		return err
	}
	v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(epoch)), seq)
	b := &kvBatch{}
	b.set(cursorKey(room), append(v, epoch...))
	return d.db.commit(b, false)
}

// Behind lists the rooms with history in the store whose latest seq is
// past their cursor (a missing cursor, or one of another epoch, is 0), in
// byte order: where a reader left off when the node last stopped.
func (d *Disk) Behind() ([]string, error) {
	if d.closed.Load() {
		return nil, errClosed
	}
	var out []string
	for _, room := range d.roomNames() {
		c, err := d.Cursor(room)
		if err != nil {
			return nil, fmt.Errorf("history: cursor of %q: %w", room, err)
		}
		if d.metaLatestOrLast(room) > c {
			out = append(out, room)
		}
	}
	return out, nil
}

// epochOnDisk is room's epoch as its record holds it, or the store's for a
// room without one (a room's first commit writes the epoch it was given,
// the store's, and a room's epoch never changes while the store is open:
// retention keeps its seq going, and Import refuses a room with history).
// Read from disk, so that listing cursors does not load every room.
func (d *Disk) epochOnDisk(room string) (string, error) {
	e, ok, err := d.db.get(metaKey(room))
	if err != nil {
		return "", err
	}
	if !ok {
		return d.epoch, nil
	}
	return string(e), nil
}
