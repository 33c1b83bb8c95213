package report

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"myrpc/benchmarks/internal/impls"
	"myrpc/benchmarks/internal/results"
)

// WriteChart draws the chart to path as a PNG: for each payload size, a
// row of two plots, QPS against callers and p99 latency against callers,
// with one line per implementation. All axes are logarithmic.
func WriteChart(rows []results.Row, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Chart(rows, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Chart draws the chart (see WriteChart) as a PNG to w.
func Chart(rows []results.Row, w io.Writer) error {
	sizes := payloads(rows)
	if len(sizes) == 0 {
		return fmt.Errorf("report: no case rows to chart")
	}
	names := implNames(rows)
	plots := make([][]*plot.Plot, len(sizes))
	for j, size := range sizes {
		qps := newLogPlot(fmt.Sprintf("Throughput, %s payload", sizeName(size)), "calls per second (log)", fmtDecade)
		p99 := newLogPlot(fmt.Sprintf("p99 latency, %s payload", sizeName(size)), "p99 latency (log)", fmtLatency)
		var callers []int
		for i, name := range names {
			var qpsXY, p99XY plotter.XYs
			for _, r := range cases(rows) {
				if r.Impl != name || r.PayloadBytes != size || r.Failed || r.Calls == 0 {
					continue
				}
				if !slices.Contains(callers, r.Callers) {
					callers = append(callers, r.Callers)
				}
				qpsXY = append(qpsXY, plotter.XY{X: float64(r.Callers), Y: r.QPS})
				p99XY = append(p99XY, plotter.XY{X: float64(r.Callers), Y: max(r.P99US, 0.1)})
			}
			if err := addLine(qps, name, i, qpsXY); err != nil {
				return err
			}
			if err := addLine(p99, name, i, p99XY); err != nil {
				return err
			}
		}
		slices.Sort(callers)
		for _, p := range []*plot.Plot{qps, p99} {
			setCallersAxis(p, callers)
			fitLogY(p)
		}
		plots[j] = []*plot.Plot{qps, p99}
	}

	width, height := 13*vg.Inch, vg.Length(len(sizes))*5*vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96))
	dc := draw.New(img)
	tiles := draw.Tiles{
		Rows: len(sizes), Cols: 2,
		PadX: vg.Inch / 3, PadY: vg.Inch / 3,
		PadTop: vg.Inch / 6, PadBottom: vg.Inch / 6, PadLeft: vg.Inch / 6, PadRight: vg.Inch / 6,
	}
	canvases := plot.Align(plots, tiles, dc)
	for j := range plots {
		for i := range plots[j] {
			plots[j][i].Draw(canvases[j][i])
		}
	}
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// newLogPlot returns a plot with a logarithmic y axis labelled by format.
func newLogPlot(title, ylabel string, format func(float64) string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "callers (log)"
	p.Y.Label.Text = ylabel
	p.X.Scale = plot.LogScale{}
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = logTicks{format: format}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

// lineColors tell the lines apart, one colour per implementation for up to
// ten (the Tableau 10 palette); plotutil's own has seven.
var lineColors = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff},
	color.RGBA{0x2c, 0xa0, 0x2c, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff},
	color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, color.RGBA{0x7f, 0x7f, 0x7f, 0xff},
	color.RGBA{0xbc, 0xbd, 0x22, 0xff}, color.RGBA{0x17, 0xbe, 0xcf, 0xff},
}

// addLine adds the line of implementation i, if it has points.
func addLine(p *plot.Plot, name string, i int, xys plotter.XYs) error {
	if len(xys) == 0 {
		return nil
	}
	l, pts, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color = lineColors[i%len(lineColors)]
	l.Width = vg.Points(1.5)
	pts.Color = l.Color
	pts.Shape = plotutil.Shape(i)
	pts.Radius = vg.Points(3)
	if im, ok := impls.Lookup(name); !ok || im.Kind != impls.KindStage {
		// Baselines and limits are dashed, the stages solid.
		l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
	}
	p.Add(l, pts)
	p.Legend.Add(name, l, pts)
	return nil
}

// setCallersAxis puts a tick at each callers value and a margin around
// them, so that a single value still makes an axis.
func setCallersAxis(p *plot.Plot, callers []int) {
	if len(callers) == 0 {
		callers = []int{1}
	}
	var ticks []plot.Tick
	for _, c := range callers {
		ticks = append(ticks, plot.Tick{Value: float64(c), Label: fmt.Sprint(c)})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min = float64(callers[0]) / 1.6
	p.X.Max = float64(callers[len(callers)-1]) * 1.6
}

// fitLogY widens the y range to whole decades around the data, so that a
// log axis always has labelled ticks.
func fitLogY(p *plot.Plot) {
	lo, hi := p.Y.Min, p.Y.Max
	if !(lo > 0) || !(hi > 0) || lo > hi {
		lo, hi = 1, 10
	}
	p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	p.Y.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
	if p.Y.Max <= p.Y.Min {
		p.Y.Max = p.Y.Min * 10
	}
}

// logTicks labels each decade with format and marks 2..9 within it.
type logTicks struct{ format func(float64) string }

func (t logTicks) Ticks(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for d := math.Pow(10, math.Floor(math.Log10(lo))); d <= hi*1.0001; d *= 10 {
		ticks = append(ticks, plot.Tick{Value: d, Label: t.format(d)})
		for k := 2; k < 10; k++ {
			if v := d * float64(k); v <= hi {
				ticks = append(ticks, plot.Tick{Value: v})
			}
		}
	}
	return ticks
}

// fmtDecade labels a power of ten: 1, 10, 100, 1k, 10k, 100k, 1M.
func fmtDecade(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	default:
		return fmt.Sprintf("%g", v)
	}
}

// fmtLatency labels a latency given in microseconds.
func fmtLatency(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%g s", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%g ms", us/1e3)
	default:
		return fmt.Sprintf("%g µs", us)
	}
}
