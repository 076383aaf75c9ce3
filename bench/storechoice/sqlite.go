package storechoice

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strconv"

	_ "modernc.org/sqlite"
)

// SQLite through modernc.org/sqlite (SQLite transpiled to Go: no cgo), in
// WAL mode; synchronous=FULL for "always" (the WAL is fsynced at every
// commit), OFF for "none". SQLite allows one writer at a time, so writes
// go through one dedicated connection, and concurrent appends are grouped
// by the committer (committer.go): one BEGIN IMMEDIATE ... COMMIT, and so
// one fsync, for whatever queued during the previous commit. That is the
// fair way to give SQLite group commit, which it has no built-in form of;
// with one writer it is the plain "one connection serialises writes".
// Reads go through database/sql's pool (WAL readers do not block on the
// writer). Everything else is SQLite's defaults (2 MB page cache per
// connection, autocheckpoint at 1,000 pages, inline).
//
// Schema: clustered on (room, seq), so a room's history is one range of
// the table's B-tree.
const sqliteSchema = `
CREATE TABLE IF NOT EXISTS messages(
	room INTEGER NOT NULL, seq INTEGER NOT NULL, body BLOB NOT NULL,
	PRIMARY KEY(room, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rooms(
	room INTEGER PRIMARY KEY, seq INTEGER NOT NULL, epoch INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS idem(
	room INTEGER NOT NULL, key BLOB NOT NULL, seq INTEGER NOT NULL,
	PRIMARY KEY(room, key)) WITHOUT ROWID;
`

type sqliteStore struct {
	db   *sql.DB
	conn *sql.Conn // the writer
	c    *committer

	begin, commit, rollback *sql.Stmt
	insMsg, setMeta, insKey *sql.Stmt
	newest, before, meta    *sql.Stmt
}

// OpenSQLite opens a SQLite store in dir.
func OpenSQLite(dir string, sync bool) (Store, error) { return openSQLite(dir, sync, 0) }

// openSQLite opens a SQLite store in dir with a page cache of cache bytes
// per connection (0: the default, 2 MB).
func openSQLite(dir string, sync bool, cache int64) (*sqliteStore, error) {
	syncMode := "OFF"
	if sync {
		syncMode = "FULL"
	}
	dsn := filepath.Join(dir, "history.db") +
		"?_pragma=journal_mode(WAL)&_pragma=synchronous(" + syncMode + ")&_pragma=busy_timeout(5000)"
	if cache > 0 {
		dsn += "&_pragma=cache_size(-" + strconv.FormatInt(cache>>10, 10) + ")"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	s := &sqliteStore{db: db}
	if err := s.init(); err != nil {
		s.closeAll()
		return nil, err
	}
	s.c = newCommitter(s.commitGroup)
	return s, nil
}

func (s *sqliteStore) init() error {
	ctx := context.Background()
	if _, err := s.db.ExecContext(ctx, sqliteSchema); err != nil {
		return err
	}
	var err error
	if s.conn, err = s.db.Conn(ctx); err != nil {
		return err
	}
	prep := func(db interface {
		PrepareContext(context.Context, string) (*sql.Stmt, error)
	}, dst **sql.Stmt, q string) {
		if err == nil {
			*dst, err = db.PrepareContext(ctx, q)
		}
	}
	prep(s.conn, &s.begin, "BEGIN IMMEDIATE")
	prep(s.conn, &s.commit, "COMMIT")
	prep(s.conn, &s.rollback, "ROLLBACK")
	prep(s.conn, &s.insMsg, "INSERT INTO messages(room, seq, body) VALUES(?, ?, ?)")
	prep(s.conn, &s.setMeta, "INSERT INTO rooms(room, seq, epoch) VALUES(?, ?, ?) "+
		"ON CONFLICT(room) DO UPDATE SET seq = excluded.seq, epoch = excluded.epoch")
	prep(s.conn, &s.insKey, "INSERT OR REPLACE INTO idem(room, key, seq) VALUES(?, ?, ?)")
	prep(s.db, &s.newest, "SELECT seq, body FROM messages WHERE room = ? ORDER BY seq DESC LIMIT ?")
	prep(s.db, &s.before, "SELECT seq, body FROM messages WHERE room = ? AND seq < ? ORDER BY seq DESC LIMIT ?")
	prep(s.db, &s.meta, "SELECT seq, epoch FROM rooms WHERE room = ?")
	return err
}

func (s *sqliteStore) commitGroup(ms []*Msg) error {
	ctx := context.Background()
	if _, err := s.begin.ExecContext(ctx); err != nil {
		return err
	}
	err := func() error {
		for _, m := range ms {
			if _, err := s.insMsg.ExecContext(ctx, int64(m.Room), int64(m.Seq), m.Body); err != nil {
				return err
			}
			if _, err := s.setMeta.ExecContext(ctx, int64(m.Room), int64(m.Seq), int64(m.Epoch)); err != nil {
				return err
			}
			if m.Key != nil {
				if _, err := s.insKey.ExecContext(ctx, int64(m.Room), m.Key, int64(m.Seq)); err != nil {
					return err
				}
			}
		}
		_, err := s.commit.ExecContext(ctx)
		return err
	}()
	if err != nil {
		_, rerr := s.rollback.ExecContext(ctx)
		return errors.Join(err, rerr)
	}
	return nil
}

func (s *sqliteStore) Append(m *Msg) error { return s.c.Append(m) }

func (s *sqliteStore) query(stmt *sql.Stmt, visit func(uint64, []byte), args ...any) error {
	rows, err := stmt.QueryContext(context.Background(), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var seq int64
	var body sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&seq, &body); err != nil {
			return err
		}
		visit(uint64(seq), body)
	}
	return rows.Err()
}

func (s *sqliteStore) Newest(room uint32, n int, visit func(uint64, []byte)) error {
	return s.query(s.newest, visit, int64(room), n)
}

func (s *sqliteStore) Before(room uint32, seq uint64, n int, visit func(uint64, []byte)) error {
	return s.query(s.before, visit, int64(room), int64(seq), n)
}

func (s *sqliteStore) Meta(room uint32) (seq, epoch uint64, err error) {
	var sq, ep int64
	err = s.meta.QueryRowContext(context.Background(), int64(room)).Scan(&sq, &ep)
	return uint64(sq), uint64(ep), err
}

func (s *sqliteStore) Commits() int64 { return s.c.commits.Load() }

// Checkpoint moves the WAL into the database file (used after a bulk
// load so that reads see the steady state).
func (s *sqliteStore) Checkpoint() error {
	_, err := s.conn.ExecContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

func (s *sqliteStore) closeAll() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.begin, s.commit, s.rollback, s.insMsg, s.setMeta, s.insKey, s.newest, s.before, s.meta} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	if s.conn != nil {
		errs = append(errs, s.conn.Close())
	}
	errs = append(errs, s.db.Close())
	return errors.Join(errs...)
}

func (s *sqliteStore) Close() error {
	s.c.Close()
	return s.closeAll()
}
