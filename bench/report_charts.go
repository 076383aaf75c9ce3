package bench

// Charts of the report, drawn with gonum.org/v1/plot.

import (
	"fmt"
	"math"
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

// chartName returns a file name for a chart of r not yet in used, such as
// ramp-1x10000-latency.png.
func chartName(used map[string]bool, scenario string, r *Result, kind string) string {
	label := resultParam(r, "label", "name")
	if label == "" {
		label = strings.ReplaceAll(trafficShape(r), " ", "")
	}
	base := scenario
	if label = fileSafe(label); label != "" && scenario != "idle" {
		base += "-" + label
	}
	name := base + "-" + kind + ".png"
	for i := 2; used[name]; i++ {
		name = fmt.Sprintf("%s-%d-%s.png", base, i, kind)
	}
	used[name] = true
	return name
}

func fileSafe(s string) string {
	return strings.Map(func(c rune) rune {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			return c
		}
		return '-'
	}, s)
}

// memoryChart plots gateway RSS against connections for an idle result. It
// reports false, writing nothing, when no step has a memory reading.
func memoryChart(path string, r *Result) (bool, error) {
	var xys plotter.XYs
	for _, s := range stepsByConns(r) {
		if s.GatewayRSS > 0 {
			xys = append(xys, plotter.XY{X: float64(s.Conns), Y: float64(s.GatewayRSS) / (1 << 20)})
		}
	}
	if len(xys) == 0 {
		return false, nil
	}
	p := plot.New()
	p.Title.Text = "Gateway memory versus connections (idle)"
	p.X.Label.Text = "connections"
	p.Y.Label.Text = "gateway RSS (MiB)"
	p.Add(plotter.NewGrid())
	l, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return false, err
	}
	l.Color, pts.Color = plotutil.Color(0), plotutil.Color(0)
	p.Add(l, pts)
	p.X.Min, p.Y.Min = 0, 0
	for _, xy := range xys { // room above and right of the last point
		p.X.Max = math.Max(p.X.Max, xy.X*1.05)
		p.Y.Max = math.Max(p.Y.Max, xy.Y*1.1)
	}
	return true, savePNG(p, path)
}

// latencyChart plots p50, p90, p99 and p99.9 per step on a log scale,
// against the target rate when every step has a distinct one, else against
// the step labels. It reports false, writing nothing, when no step has
// latencies.
func latencyChart(path string, r *Result) (bool, error) {
	var steps []*Step
	for i := range r.Steps {
		if l := r.Steps[i].Latency; l != nil && l.Count > 0 {
			steps = append(steps, &r.Steps[i])
		}
	}
	if len(steps) == 0 {
		return false, nil
	}
	byRate := true
	for i, s := range steps {
		if s.TargetRate <= 0 || (i > 0 && s.TargetRate <= steps[i-1].TargetRate) {
			byRate = false
		}
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Delivery latency per step (%s)", sectionTitle(r))
	p.Y.Label.Text = "latency (ms)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	x := func(i int) float64 { return float64(i) }
	if byRate {
		p.X.Label.Text = "target rate (msg/s)"
		x = func(i int) float64 { return steps[i].TargetRate }
	} else {
		p.X.Label.Text = "step"
		labels := make([]string, len(steps))
		for i, s := range steps {
			labels[i] = s.Label
		}
		p.NominalX(labels...)
	}
	series := []struct {
		name string
		f    func(*Latency) float64
	}{
		{"p50", func(l *Latency) float64 { return l.P50 }},
		{"p90", func(l *Latency) float64 { return l.P90 }},
		{"p99", func(l *Latency) float64 { return l.P99 }},
		{"p99.9", func(l *Latency) float64 { return l.P999 }},
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	var args []any
	for _, sr := range series {
		xys := make(plotter.XYs, len(steps))
		for i, s := range steps {
			v := math.Max(sr.f(s.Latency), 1) / 1000 // µs to ms; HDR records at least 1 µs
			xys[i] = plotter.XY{X: x(i), Y: v}
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		args = append(args, sr.name, xys)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return false, err
	}
	if r.Scenario == "ramp" {
		bound := r.p99BoundMs()
		l, err := plotter.NewLine(plotter.XYs{{X: x(0), Y: bound}, {X: x(len(steps) - 1), Y: bound}})
		if err != nil {
			return false, err
		}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		l.Color = plotutil.Color(3)
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("p99 bound %s ms", fmtFixed(bound, 0)), l)
		lo, hi = math.Min(lo, bound), math.Max(hi, bound)
	}
	// A log axis needs positive limits; whole decades also keep a single
	// step (min == max) from collapsing the axis.
	p.Y.Min = math.Pow10(int(math.Floor(math.Log10(lo))))
	p.Y.Max = math.Pow10(int(math.Ceil(math.Log10(hi))))
	if p.Y.Max <= p.Y.Min {
		p.Y.Max = p.Y.Min * 10
	}
	if byRate {
		p.X.Min = 0
		if len(steps) == 1 {
			p.X.Max = 2 * steps[0].TargetRate
		}
	} else {
		p.X.Min, p.X.Max = -0.5, float64(len(steps))-0.5
	}
	return true, savePNG(p, path)
}

// savePNG writes p as a PNG with its legend, if any, in a margin to the
// right of the plot, where it cannot cover a line.
func savePNG(p *plot.Plot, path string) error {
	img := vgimg.New(18*vg.Centimeter, 10*vg.Centimeter)
	c := draw.New(img)
	margin := p.Legend.Rectangle(c).Size().X
	if margin > 0 {
		margin += 4 * vg.Millimeter
	}
	// The legend is drawn against the right edge of the plot's area;
	// XOffs moves it into the margin.
	p.Legend.Top, p.Legend.Left = true, false
	p.Legend.XOffs = margin - 2*vg.Millimeter
	p.Draw(draw.Crop(c, 0, -margin, 0, 0))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// latencyCells formats p50, p90, p99, p99.9 and max of l in ms.
func latencyCells(l *Latency) []string {
	if l == nil || l.Count == 0 {
		return []string{"—", "—", "—", "—", "—"}
	}
	return []string{fmtMs(l.P50), fmtMs(l.P90), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max)}
}

// ms formats a latency in µs as milliseconds with 3 significant digits
// (the histogram's precision).
func fmtMs(us float64) string {
	v := us / 1000
	switch {
	case v < 1:
		return strconv.FormatFloat(v, 'f', 3, 64)
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

func harnessCPUPerDelivery(s *Step) float64 {
	if s.Delivered == 0 {
		return 0
	}
	return s.BenchCPU / float64(s.Delivered)
}

func connsPerGiB(bytesPerConn float64) float64 {
	if bytesPerConn <= 0 {
		return 0
	}
	return bytesPerGiB / bytesPerConn
}
