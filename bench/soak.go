package bench

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// A soak's samples: one row per 10 s of the gateway's RSS, goroutines,
// heap and open fds (scripts/soak.sh), and the verdict on each: does it
// trend upward after warm-up?

// SoakSeries is one sampled quantity.
type SoakSeries struct {
	Name    string
	Unit    string
	Scale   float64 // divides the values for display
	Seconds []float64
	Values  []float64
}

// SoakTrend is a series' verdict: the least-squares slope after warm-up,
// and the growth it amounts to over that window relative to the mean.
type SoakTrend struct {
	Name           string
	Mean, Min, Max float64
	SlopePerHour   float64
	Growth         float64 // slope x window / mean
	Rising         bool
}

// ReadSoakCSV reads scripts/soak.sh's CSV.
func ReadSoakCSV(r io.Reader) ([]SoakSeries, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) < 2 {
		return nil, fmt.Errorf("soak: no samples")
	}
	head := rows[0]
	if len(head) < 2 || head[0] != "seconds" {
		return nil, fmt.Errorf("soak: first column must be seconds, got %q", head)
	}
	units := map[string][2]any{
		"rss_bytes": {"MiB", 1 << 20}, "heap_inuse_bytes": {"MiB", 1 << 20},
	}
	series := make([]SoakSeries, len(head)-1)
	for i, name := range head[1:] {
		series[i] = SoakSeries{Name: name, Unit: "count", Scale: 1}
		if u, ok := units[name]; ok {
			series[i].Unit, series[i].Scale = u[0].(string), float64(u[1].(int))
		}
	}
	for n, row := range rows[1:] {
		if len(row) != len(head) {
			return nil, fmt.Errorf("soak: row %d has %d fields, want %d", n+2, len(row), len(head))
		}
		sec, err := strconv.ParseFloat(row[0], 64)
		if err != nil {
			return nil, fmt.Errorf("soak: row %d: %v", n+2, err)
		}
		for i := range series {
			v, err := strconv.ParseFloat(row[i+1], 64)
			if err != nil {
				continue // a missed sample (metrics not read)
			}
			series[i].Seconds = append(series[i].Seconds, sec)
			series[i].Values = append(series[i].Values, v)
		}
	}
	return series, nil
}

// Trend judges s after warmup seconds: rising when the least-squares line
// grows by more than tolerance (a fraction of the mean) over the window.
func Trend(s SoakSeries, warmup, tolerance float64) SoakTrend {
	var xs, ys []float64
	for i, t := range s.Seconds {
		if t >= warmup {
			xs, ys = append(xs, t), append(ys, s.Values[i])
		}
	}
	tr := SoakTrend{Name: s.Name}
	if len(xs) < 3 {
		return tr
	}
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	tr.Min, tr.Max = ys[0], ys[0]
	for i := range xs {
		sx, sy = sx+xs[i], sy+ys[i]
		sxx, sxy = sxx+xs[i]*xs[i], sxy+xs[i]*ys[i]
		tr.Min, tr.Max = min(tr.Min, ys[i]), max(tr.Max, ys[i])
	}
	tr.Mean = sy / n
	den := n*sxx - sx*sx
	if den == 0 || tr.Mean == 0 {
		return tr
	}
	slope := (n*sxy - sx*sy) / den // per second
	tr.SlopePerHour = slope * 3600
	tr.Growth = slope * (xs[len(xs)-1] - xs[0]) / tr.Mean
	tr.Rising = tr.Growth > tolerance
	return tr
}

// SoakReport writes soak.png (one panel per series) and soak.md (the
// verdicts) into dir, and returns the verdicts.
func SoakReport(series []SoakSeries, dir string, warmup, tolerance float64) ([]SoakTrend, error) {
	var trends []SoakTrend
	var md strings.Builder
	fmt.Fprintf(&md, "# Soak\n\nSamples every 10 s; verdicts on the samples after %.0f s of warm-up: "+
		"a series rises when its least-squares line grows by more than %.0f%% of its mean over that window.\n\n", warmup, tolerance*100)
	md.WriteString("| series | mean | min | max | slope per hour | growth over the window | verdict |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range series {
		tr := Trend(s, warmup, tolerance)
		trends = append(trends, tr)
		verdict := "flat"
		if tr.Rising {
			verdict = "**rising**"
		}
		f := func(v float64) string { return strconv.FormatFloat(v/s.Scale, 'f', 2, 64) + " " + s.Unit }
		fmt.Fprintf(&md, "| %s | %s | %s | %s | %s | %+.1f%% | %s |\n", s.Name, f(tr.Mean), f(tr.Min), f(tr.Max),
			f(tr.SlopePerHour), tr.Growth*100, verdict)
	}
	md.WriteString("\n![soak](soak.png)\n")
	if err := os.WriteFile(dir+"/soak.md", []byte(md.String()), 0o644); err != nil {
		return nil, err
	}
	return trends, soakChart(dir+"/soak.png", series, warmup)
}

func soakChart(path string, series []SoakSeries, warmup float64) error {
	const w, h = 8 * vg.Inch, 2.2 * vg.Inch
	img := vgimg.New(w, h*vg.Length(len(series)))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(series), Cols: 1, PadY: vg.Points(4)}
	for i, s := range series {
		p := plot.New()
		p.Title.Text = s.Name
		p.X.Label.Text = "minutes"
		p.Y.Label.Text = s.Unit
		p.Add(plotter.NewGrid())
		var xys plotter.XYs
		for j := range s.Seconds {
			xys = append(xys, plotter.XY{X: s.Seconds[j] / 60, Y: s.Values[j] / s.Scale})
		}
		if len(xys) > 0 {
			l, err := plotter.NewLine(xys)
			if err != nil {
				return err
			}
			l.Color = plotutil.Color(i)
			p.Add(l)
		}
		wl, err := plotter.NewLine(plotter.XYs{{X: warmup / 60, Y: 0}, {X: warmup / 60, Y: maxY(xys)}})
		if err == nil {
			wl.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
			p.Add(wl)
		}
		p.Y.Min = 0
		p.Draw(tiles.At(dc, 0, len(series)-1-i))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(f)
	return err
}

func maxY(xys plotter.XYs) float64 {
	m := 1.0
	for _, xy := range xys {
		m = max(m, xy.Y*1.1)
	}
	return m
}
