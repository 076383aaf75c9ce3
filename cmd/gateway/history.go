package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/chatgw/gateway/gateway/history"
)

// gateway history: moving and backing up the durable store's rooms
// (history.Disk's Export and Import) while no node runs on it.

const historyUsage = `Usage: gateway history export --room ROOM [--data-dir DIR] [--out FILE]
       gateway history import [--data-dir DIR] [--in FILE]
       gateway history rooms [--data-dir DIR]

Moves room histories between durable stores (--data-dir) as JSON lines: a
header {"version":1,"room":...,"epoch":...,"latest":...}, then each stored
message as clients receive it, one per line, in ascending seq. An import
keeps the seqs, timestamps and epoch, so clients that resume on the new
store are recovered. The store must not be in use: stop the node first.

  export   write ROOM's history to FILE (default: standard output)
  import   read an export from FILE (default: standard input) into a room
           that has no history in the store (refused otherwise, and for
           input that is not an export: nothing is written then)
  rooms    list the rooms with history, one per line

--data-dir defaults to $GATEWAY_DATA_DIR, else "data", as for the node.
Exit status: 0 done, 1 the work failed, 2 bad usage.
`

// usageError is a command line at fault: exit status 2.
type usageError struct{ error }

// historyMain runs "gateway history" with the arguments after it and
// returns the exit status.
func historyMain(args []string, lookup func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	sub := "history"
	if len(args) > 0 {
		sub = "history " + args[0]
	}
	err := historyRun(args, lookup, stdin, stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, historyUsage)
		return 0
	}
	// One line, as the node's errors; the store's own prefix would repeat
	// the command's.
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	for _, p := range []string{"history import: ", "history: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	fmt.Fprintf(stderr, "gateway %s: %s\n", sub, msg)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func historyRun(args []string, lookup func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("want a subcommand: export, import or rooms (see gateway history --help)")}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		return flag.ErrHelp
	}
	fs := flag.NewFlagSet("gateway history "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported in one line; --help prints historyUsage
	dir := fs.String("data-dir", "data", "directory of the durable history store")
	var room, out, in *string
	switch args[0] {
	case "export":
		room = fs.String("room", "", "the room to export")
		out = fs.String("out", "-", "file to write (- for standard output)")
	case "import":
		in = fs.String("in", "-", "file to read (- for standard input)")
	case "rooms":
	default:
		return usageError{fmt.Errorf("unknown subcommand %q: want export, import or rooms (see gateway history --help)", args[0])}
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{fmt.Errorf("%v (see gateway history --help)", err)}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))}
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "data-dir" })
	if v, ok := lookup("GATEWAY_DATA_DIR"); ok && !given {
		*dir = v
	}
	if *dir == "" {
		return usageError{errors.New("--data-dir is empty: name the durable store's directory")}
	}
	switch args[0] {
	case "export":
		if *room == "" {
			return usageError{errors.New("--room is required")}
		}
		return historyExport(*dir, *room, *out, stdout, stderr)
	case "import":
		return historyImport(*dir, *in, stdin, stderr)
	default:
		return historyRooms(*dir, stdout)
	}
}

// openStore opens the store under dir; with existing, only one already
// there (an export must not create an empty store where none was).
func openStore(dir string, existing bool) (*history.Disk, error) {
	if existing {
		if _, err := os.Stat(filepath.Join(dir, "history.db")); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("--data-dir %s: no history database there (history.db)", dir)
		}
	}
	d, err := history.OpenDisk(history.DiskConfig{Dir: dir})
	if errors.Is(err, history.ErrInUse) {
		return nil, fmt.Errorf("%w: stop the node first", err)
	}
	return d, err
}

func historyExport(dir, room, out string, stdout, stderr io.Writer) error {
	return withStore(dir, true, func(d *history.Disk) error { return export(d, room, out, stdout, stderr) })
}

func export(d *history.Disk, room, out string, stdout, stderr io.Writer) error {
	w, commit, abort := stdout, func() error { return nil }, func() {}
	if out != "-" {
		// Written beside FILE and renamed over it when complete: a failed
		// export leaves no half file.
		f, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
		if err != nil {
			return err
		}
		w = f
		abort = func() { _ = f.Close(); _ = os.Remove(f.Name()) }
		commit = func() error {
			if err := f.Sync(); err != nil {
				abort()
				return err
			}
			if err := f.Close(); err != nil {
				_ = os.Remove(f.Name())
				return err
			}
			if err := os.Rename(f.Name(), out); err != nil {
				_ = os.Remove(f.Name())
				return err
			}
			return nil
		}
	}
	n, err := d.Export(room, w)
	if err != nil {
		abort()
		return err
	}
	if err := commit(); err != nil {
		return err
	}
	to := "standard output"
	if out != "-" {
		to = out
	}
	fmt.Fprintf(stderr, "exported %d messages of room %q to %s\n", n, room, to)
	return nil
}

func historyImport(dir, in string, stdin io.Reader, stderr io.Writer) error {
	r := stdin
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	return withStore(dir, false, func(d *history.Disk) error {
		room, n, err := d.Import(r)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "imported %d messages into room %q\n", n, room)
		return nil
	})
}

func historyRooms(dir string, stdout io.Writer) error {
	return withStore(dir, true, func(d *history.Disk) error {
		for _, r := range d.Rooms() {
			if _, err := fmt.Fprintln(stdout, r); err != nil {
				return err
			}
		}
		return nil
	})
}

// withStore runs fn on the store under dir (see openStore) and closes it;
// an error of the close counts when fn had none.
func withStore(dir string, existing bool, fn func(*history.Disk) error) (err error) {
	d, err := openStore(dir, existing)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := d.Close(); err == nil {
			err = cerr
		}
	}()
	return fn(d)
}
