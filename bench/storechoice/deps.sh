#!/usr/bin/env bash
# Counts what each candidate brings into a module: for each, a scratch
# module (in a temporary directory) whose main opens a database, writes a
# record and reads it back with that candidate alone; then
#   - go list -m all | wc -l: the module graph, the scratch module itself
#     included (1 for the empty main);
#   - modules built in: the modules whose packages are compiled into the
#     binary (go list -deps), the scratch module included;
#   - the size of the stripped binary (the empty main is the baseline).
set -euo pipefail
export CGO_ENABLED=0 # as the gateway is built (deploy/Dockerfile)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cand() { # name module@version (main.go on stdin)
	local d="$tmp/$1"
	mkdir -p "$d"
	cat >"$d/main.go"
	(
		cd "$d"
		go mod init example.com/scratch >/dev/null 2>&1
		[ -z "$2" ] || go get "$2" >/dev/null 2>&1
		go mod tidy >/dev/null 2>&1
		go build -trimpath -ldflags=-s -o bin .
		./bin "$d/db" 2>/dev/null || { echo "$1: the scratch program failed" >&2; exit 1; }
		printf '%-7s %-40s go list -m all: %3d  modules built in: %2d  binary: %5.1f MB\n' \
			"$1" "${2:-(empty main)}" "$(go list -m all | wc -l)" \
			"$(go list -deps -f '{{with .Module}}{{.Path}}{{end}}' . | sort -u | wc -l)" \
			"$(stat -c %s bin | awk '{printf "%.1f", $1/1048576}')"
	)
}

cand none "" <<'GO'
package main

func main() {}
GO

cand pebble github.com/cockroachdb/pebble/v2@v2.1.7 <<'GO'
package main

import (
	"os"

	"github.com/cockroachdb/pebble/v2"
)

func main() {
	db, err := pebble.Open(os.Args[1], &pebble.Options{})
	if err != nil {
		panic(err)
	}
	if err := db.Set([]byte("k"), []byte("v"), pebble.Sync); err != nil {
		panic(err)
	}
	it, err := db.NewIter(nil)
	if err != nil {
		panic(err)
	}
	if !it.Last() || string(it.Value()) != "v" {
		panic("not read back")
	}
	it.Close()
	if err := db.Close(); err != nil {
		panic(err)
	}
}
GO

cand bbolt go.etcd.io/bbolt@v1.5.0 <<'GO'
package main

import (
	"os"

	bolt "go.etcd.io/bbolt"
)

func main() {
	db, err := bolt.Open(os.Args[1], 0o600, nil)
	if err != nil {
		panic(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte("m"))
		if err != nil {
			return err
		}
		return b.Put([]byte("k"), []byte("v"))
	})
	if err != nil {
		panic(err)
	}
	db.View(func(tx *bolt.Tx) error {
		if k, v := tx.Bucket([]byte("m")).Cursor().Last(); string(k) != "k" || string(v) != "v" {
			panic("not read back")
		}
		return nil
	})
	if err := db.Close(); err != nil {
		panic(err)
	}
}
GO

cand sqlite modernc.org/sqlite@v1.62.0 <<'GO'
package main

import (
	"database/sql"
	"os"

	_ "modernc.org/sqlite"
)

func main() {
	db, err := sql.Open("sqlite", os.Args[1]+"?_pragma=journal_mode(WAL)")
	if err != nil {
		panic(err)
	}
	if _, err := db.Exec("CREATE TABLE m(k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID; INSERT INTO m VALUES('k', 'v')"); err != nil {
		panic(err)
	}
	var v string
	if err := db.QueryRow("SELECT v FROM m ORDER BY k DESC LIMIT 1").Scan(&v); err != nil || v != "v" {
		panic("not read back")
	}
	if err := db.Close(); err != nil {
		panic(err)
	}
}
GO
