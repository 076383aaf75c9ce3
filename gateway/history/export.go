package history

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Moving a room's history between Disk stores (gateway history export and
// import): see Export for the format.

// exportVersion is the format's version, the header's "version".
const exportVersion = 1

// exportHeader is the first line.
type exportHeader struct {
	Version int    `json:"version"`
	Room    string `json:"room"`
	Epoch   string `json:"epoch"`
	Latest  uint64 `json:"latest"`
}

// exportLine is what Import checks of a message line.
type exportLine struct {
	Type string  `json:"type"`
	Room *string `json:"room"`
	Seq  *uint64 `json:"seq"`
	TS   *int64  `json:"ts"`
}

const (
	// importBatch bounds the messages one Import transaction writes...
	importBatch = 4096
	// ...and their bytes.
	importBatchBytes = 8 << 20
	// maxImportLine bounds one line of an import.
	maxImportLine = 64 << 20
)

// Export writes room's history to w as JSON lines and returns the number
// of message lines written. The messages come from one read transaction:
// a consistent snapshot, even of a store in use. A room with no history in
// the store is an error.
//
// The format, version 1: UTF-8 text, one JSON object per line, each line
// ended by "\n":
//
//	{"version":1,"room":"general","epoch":"9f2c01ab","latest":57}
//	{"type":"message","room":"general","seq":55,"ts":1718000000000,"from":"alice","text":"hi"}
//	{"type":"message","room":"general","seq":56,"ts":1718000000123,"from":"bob","data":{"k":1}}
//	{"type":"message","room":"general","seq":57,"ts":1718000000456,"from":"carol","to":"dave","text":"yo"}
//
// The first line is the header: the format version, the room, the room's
// epoch and its latest seq. Every other line is one stored message: its
// payload as clients receive it in "message" frames and in joined/history
// replies (type "message", room, seq, ts, from, to for direct messages,
// text and/or data), in ascending seq without gaps, the last at latest.
// The first need not be seq 1: retention may have removed older messages.
// Latest > 0 with no message lines is a room whose messages were all
// removed: its seq goes on after latest. Export writes each payload as
// stored, except that line breaks which verbatim client data may hold are
// removed (json.Compact); Import stores each line as it is, and skips blank
// lines (a "\r" before the "\n" is allowed). Idempotency keys are not
// exported: they live two minutes (KeyTTL). A later, different format gets
// another version.
func (d *Disk) Export(room string, w io.Writer) (n int, err error) {
	if d.closed.Load() {
		return 0, errClosed
	}
	if err := checkRoomName(room); err != nil {
		return 0, err
	}
	if _, ok, err := d.db.get(metaKey(room)); err != nil {
		return 0, err
	} else if !ok {
		return 0, fmt.Errorf("history: room %q has no history in this store", room)
	}
	s := d.shard(room)
	s.mu.Lock()
	r, err := d.room(s, room)
	var h exportHeader
	if err == nil {
		h = exportHeader{Version: exportVersion, Room: room, Epoch: r.epoch, Latest: r.latest}
	}
	s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	head, _ := json.Marshal(h)
	_, _ = bw.Write(append(head, '\n'))
	// Everything up to the latest durable seq is in any snapshot taken
	// after reading it; retention may only have removed the oldest.
	var compact bytes.Buffer
	var werr error
	err = d.db.scan(seqKey(room, 0), seqKey(room, h.Latest+1), false, func(k, v []byte) bool {
		if len(v) < 8 {
			werr = fmt.Errorf("history: bad record %q", k)
			return false
		}
		p := v[8:]
		if bytes.ContainsAny(p, "\r\n") {
			// Verbatim client data may hold line breaks (JSON whitespace).
			compact.Reset()
			if cerr := json.Compact(&compact, p); cerr != nil {
				werr = fmt.Errorf("history: record %q: %v", k, cerr)
				return false
			}
			p = compact.Bytes()
		}
		_, _ = bw.Write(p)
		if werr = bw.WriteByte('\n'); werr != nil {
			return false
		}
		n++
		return true
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return n, err
	}
	return n, bw.Flush()
}

// Import reads one room's history in the format above into this store and
// returns the room and the number of messages stored. The room keeps its
// seqs, timestamps and epoch, so a client resuming with what it saw before
// the move is recovered.
//
// The room must have no history in this store: no messages, none pending,
// and no seq reached before retention removed its messages. Input that is
// not the format (a bad header or line, a message of another room, seqs not
// ascending one by one, a last seq other than the header's latest) is
// refused with an error naming the line, and nothing is stored: the
// messages are written a few thousand per transaction, and on an error
// those already written are deleted again. The room's record is written
// last, so that the room exists only once complete.
//
// Import is meant for a store no node serves (gateway history import):
// while it runs it holds the lock of the room's shard, so appends to the
// rooms sharing it wait, and a node's hub would not learn of the change.
func (d *Disk) Import(r io.Reader) (room string, n int, err error) {
	if d.closed.Load() {
		return "", 0, errClosed
	}
	in := &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
	line, err := in.next()
	if err == io.EOF {
		return "", 0, errors.New("history import: empty input, want a history export")
	}
	if err != nil {
		return "", 0, err
	}
	var h exportHeader
	if json.Unmarshal(line, &h) != nil || h.Version == 0 {
		return "", 0, fmt.Errorf("history import: line %d: not a history export header (want {\"version\":1,\"room\":...,\"epoch\":...,\"latest\":...})", in.n)
	}
	if h.Version != exportVersion {
		return "", 0, fmt.Errorf("history import: line %d: format version %d, this gateway reads version %d", in.n, h.Version, exportVersion)
	}
	if err := checkRoomName(h.Room); err != nil {
		return "", 0, fmt.Errorf("history import: line %d: %v", in.n, err)
	}
	if h.Epoch == "" {
		return "", 0, fmt.Errorf("history import: line %d: header without an epoch", in.n)
	}
	if h.Latest >= maxSeq-1 {
		return "", 0, fmt.Errorf("history import: line %d: latest %d out of range", in.n, h.Latest)
	}
	room = h.Room
	s := d.shard(room)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := d.importable(s, room); err != nil {
		return room, 0, err
	}

	b := &kvBatch{}
	size, written := 0, false
	var first, prev uint64
	fail := func(err error) (string, int, error) {
		if written {
			undo := &kvBatch{}
			undo.deleteRange(seqKey(room, 0), seqKey(room, maxSeq))
			if uerr := d.db.commit(undo, true); uerr != nil {
				return room, 0, fmt.Errorf("%w (and removing the %d messages written failed: %v)", err, n, uerr)
			}
		}
		return room, 0, err
	}
	for {
		line, err := in.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(err)
		}
		var m exportLine
		if err := json.Unmarshal(line, &m); err != nil {
			return fail(fmt.Errorf("history import: line %d: %v", in.n, err))
		}
		switch {
		case m.Type != "message":
			return fail(fmt.Errorf("history import: line %d: type %q, want a \"message\" payload", in.n, m.Type))
		case m.Room == nil || m.Seq == nil || m.TS == nil:
			return fail(fmt.Errorf("history import: line %d: a message needs room, seq and ts", in.n))
		case *m.Room != room:
			return fail(fmt.Errorf("history import: line %d: room %q, the header's is %q", in.n, *m.Room, room))
		case *m.Seq == 0 || (prev != 0 && *m.Seq != prev+1):
			return fail(fmt.Errorf("history import: line %d: seq %d after %d: want seqs ascending one by one", in.n, *m.Seq, prev))
		case *m.Seq > h.Latest:
			return fail(fmt.Errorf("history import: line %d: seq %d beyond the header's latest %d", in.n, *m.Seq, h.Latest))
		}
		if prev == 0 {
			first = *m.Seq
		}
		prev = *m.Seq
		v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(line)), uint64(*m.TS))
		b.set(seqKey(room, prev), append(v, line...))
		n++
		size += len(line)
		if len(b.ops) >= importBatch || size >= importBatchBytes {
			// Not synced: the last commit's fsync covers the file.
			written = true
			if err := d.db.commit(b, false); err != nil {
				return fail(err)
			}
			b, size = &kvBatch{}, 0
		}
	}
	if n > 0 && prev != h.Latest {
		return fail(fmt.Errorf("history import: the last message is seq %d, the header's latest %d (input cut short?)", prev, h.Latest))
	}
	b.set(metaKey(room), []byte(h.Epoch))
	if n == 0 && h.Latest > 0 { // every message removed: the seq goes on
		b.set(append(metaKey(room), 0), binary.BigEndian.AppendUint64(nil, h.Latest))
	}
	if err := d.db.commit(b, true); err != nil {
		return fail(err)
	}
	rs := s.rooms[room]
	if rs == nil {
		rs = &diskRoom{}
		s.rooms[room] = rs
	}
	rs.epoch, rs.latest, rs.next, rs.oldest = h.Epoch, h.Latest, h.Latest, h.Latest+1
	if n > 0 {
		rs.oldest = first
	}
	return room, n, nil
}

// importable reports why room cannot take an import, if it cannot. s.mu
// held.
func (d *Disk) importable(s *diskShard, room string) error {
	if r := s.rooms[room]; r != nil && (r.next > 0 || r.latest > 0 || r.pending > 0) {
		return fmt.Errorf("history import: room %q already has messages in this store (seq %d); import only into a room without history", room, r.next)
	}
	if _, ok, err := d.db.get(metaKey(room)); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("history import: room %q already has history in this store (seq %d); import only into a room without history", room, d.metaLatestOrLast(room))
	}
	var found bool
	if err := d.db.scan(seqKey(room, 0), seqKey(room, maxSeq), false, func(_, _ []byte) bool {
		found = true
		return false
	}); err != nil {
		return err
	}
	if found {
		return fmt.Errorf("history import: room %q has messages but no record in this store (an interrupted import?); import into a fresh --data-dir", room)
	}
	return nil
}

// metaLatestOrLast is the latest seq of a room with a record: its last
// message's, or what its record keeps after retention removed them all.
func (d *Disk) metaLatestOrLast(room string) uint64 {
	var last uint64
	_ = d.db.scan(seqKey(room, 0), seqKey(room, maxSeq), true, func(k, _ []byte) bool {
		last = binary.BigEndian.Uint64(k[len(k)-8:])
		return false
	})
	if last == 0 {
		last = d.metaLatest(room)
	}
	return last
}

// Rooms lists the rooms with history in the store (a record on disk), in
// byte order.
func (d *Disk) Rooms() []string {
	if d.closed.Load() {
		return nil
	}
	return d.roomNames()
}

// checkRoomName refuses names the store's keys cannot hold.
func checkRoomName(room string) error {
	if room == "" {
		return errors.New("history: empty room name")
	}
	if bytes.IndexByte([]byte(room), 0) >= 0 {
		return fmt.Errorf("history: room name %q holds a NUL byte", room)
	}
	return nil
}

// lineReader returns the non-blank lines of an import, counting them from
// 1 (blank ones included) for error messages.
type lineReader struct {
	r   *bufio.Reader
	n   int
	buf []byte
}

// next returns the next non-blank line without its line break (valid until
// the next call), or io.EOF.
func (l *lineReader) next() ([]byte, error) {
	for {
		l.buf = l.buf[:0]
		for {
			chunk, err := l.r.ReadSlice('\n')
			l.buf = append(l.buf, chunk...)
			if len(l.buf) > maxImportLine {
				return nil, fmt.Errorf("history import: line %d: longer than %d bytes", l.n+1, maxImportLine)
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == io.EOF && len(l.buf) > 0 {
				break
			}
			if err != nil {
				return nil, err
			}
			break
		}
		l.n++
		if line := bytes.TrimSpace(l.buf); len(line) > 0 {
			return line, nil
		}
	}
}
