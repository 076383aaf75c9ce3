package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSoakTrendTellsFlatFromRising(t *testing.T) {
	var b strings.Builder
	b.WriteString("seconds,rss_bytes,goroutines\n")
	for i := 0; i <= 180; i++ { // 30 minutes of 10 s samples
		sec := i * 10
		noise := float64((i*37)%11) - 5 // bounded jitter around the mean
		rss := 40e6 + noise*1e5         // flat
		leak := 20 + float64(i)/3       // one goroutine more every 30 s
		if sec < 300 {
			rss = 20e6 + float64(sec)*6e4 // warm-up ramp, not judged
		}
		fmt.Fprintf(&b, "%d,%.0f,%.0f\n", sec, rss, leak)
	}
	series, err := ReadSoakCSV(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(series) != 2 || series[0].Unit != "MiB" || len(series[0].Values) != 181 {
		t.Fatalf("parsed %+v", series)
	}
	dir := t.TempDir()
	trends, err := SoakReport(series, dir, 300, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	if trends[0].Rising || !trends[1].Rising {
		t.Fatalf("rss %+v (flat), goroutines %+v (rising)", trends[0], trends[1])
	}
	for _, f := range []string{"soak.md", "soak.png"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Fatalf("%s: %v", f, err)
		}
	}
	if _, err := ReadSoakCSV(strings.NewReader("time,rss\n1,2\n")); err == nil {
		t.Fatal("a CSV without a seconds column was accepted")
	}
}
