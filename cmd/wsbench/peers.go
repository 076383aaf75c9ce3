package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/chatgw/gateway/bench"
)

// runPeers writes the side-by-side table of a peers comparison
// (scripts/bench.sh --peers) to DIR/peers.md and prints it.
func runPeers(args []string) error {
	fs := flag.NewFlagSet("peers", flag.ContinueOnError)
	out := fs.String("out", ".", "directory for peers.md")
	versions := fs.String("versions", "", "the peers' versions to quote (bin/peers/VERSIONS); optional")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: wsbench peers [--out DIR] [--versions FILE] peers-SERVER-LOAD.json...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("peers: give result JSON files named peers-SERVER-LOAD.json")
	}
	runs, err := bench.ReadPeerRuns(fs.Args()...)
	if err != nil {
		return err
	}
	var v []byte
	if *versions != "" {
		if v, err = os.ReadFile(*versions); err != nil {
			return err
		}
	}
	md := bench.PeersMarkdown(runs, string(v))
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	path := filepath.Join(*out, "peers.md")
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	fmt.Println("wrote", path)
	return nil
}
