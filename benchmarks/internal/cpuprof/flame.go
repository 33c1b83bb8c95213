package cpuprof

import (
	"bufio"
	"cmp"
	"fmt"
	"hash/fnv"
	"html"
	"io"
	"slices"
	"strings"

	"github.com/google/pprof/profile"
)

// Flame graph geometry, in SVG pixels.
const (
	flameWidth  = 1200.0
	flameRow    = 16.0
	flameTop    = 28.0 // room for the title
	flameMargin = 10.0
	flameMinW   = 1.0 // narrower frames are left out
	charWidth   = 6.6 // of the 11-pixel monospace text, roughly
)

// node is one frame of the merged stacks: a function called through one
// path from the root.
type node struct {
	name     string
	value    int64
	children []*node
}

func (n *node) child(name string) *node {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	c := &node{name: name}
	n.children = append(n.children, c)
	return c
}

// flameTree merges the samples of p, by their CPU time, into one tree
// whose root is all of them.
func flameTree(p *profile.Profile) (*node, error) {
	vi, err := cpuIndex(p)
	if err != nil {
		return nil, err
	}
	root := &node{name: "all"}
	for _, s := range p.Sample {
		v := s.Value[vi]
		if v == 0 {
			continue
		}
		root.value += v
		st := stack(s)
		n := root
		for i := len(st) - 1; i >= 0; i-- {
			n = n.child(st[i])
			n.value += v
		}
	}
	var sortTree func(n *node)
	sortTree = func(n *node) {
		slices.SortFunc(n.children, func(a, b *node) int { return cmp.Compare(a.name, b.name) })
		for _, c := range n.children {
			sortTree(c)
		}
	}
	sortTree(root)
	return root, nil
}

// depth is the number of rows the tree needs.
func (n *node) depth() int {
	d := 0
	for _, c := range n.children {
		d = max(d, c.depth())
	}
	return d + 1
}

// WriteFlame writes a flame graph of p's CPU time as SVG: each sampled
// stack a column of frames, the root at the top and the function that was
// running at the bottom, each frame as wide as its share of the time, the
// callees of a frame side by side in the order of their names. It is drawn
// top down (an icicle graph) so that the calls read in the order they were
// made; a frame's tooltip gives its full name and share.
func WriteFlame(w io.Writer, p *profile.Profile, title string) error {
	root, err := flameTree(p)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	rows := root.depth()
	height := flameTop + float64(rows)*flameRow + flameMargin
	fmt.Fprintf(bw, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="monospace" font-size="11">`+"\n",
		flameWidth, height, flameWidth, height)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="#fafaf5"/>`+"\n")
	fmt.Fprintf(bw, `<text x="%.0f" y="18" font-size="13">%s</text>`+"\n", flameMargin, html.EscapeString(title))
	if root.value > 0 {
		scale := (flameWidth - 2*flameMargin) / float64(root.value)
		writeFrames(bw, root, flameMargin, flameTop, scale, root.value)
	}
	fmt.Fprintln(bw, "</svg>")
	return bw.Flush()
}

// writeFrames writes n at x, y and its callees in the row below.
func writeFrames(w io.Writer, n *node, x, y, scale float64, total int64) {
	width := float64(n.value) * scale
	if width < flameMinW {
		return
	}
	pct := 100 * float64(n.value) / float64(total)
	fmt.Fprintf(w, `<g><title>%s (%.1f%%, %.0f ms)</title><rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="%s" stroke="#fafaf5" stroke-width="0.5"/>`,
		html.EscapeString(n.name), pct, float64(n.value)/1e6, x, y, width, flameRow-1, frameColor(n.name))
	if label := fitLabel(ShortName(n.name), width); label != "" {
		fmt.Fprintf(w, `<text x="%.1f" y="%.1f">%s</text>`, x+3, y+flameRow-4.5, html.EscapeString(label))
	}
	fmt.Fprintln(w, "</g>")
	cx := x
	for _, c := range n.children {
		writeFrames(w, c, cx, y+flameRow, scale, total)
		cx += float64(c.value) * scale
	}
}

// fitLabel shortens name to fit width, or returns "" if nothing useful
// fits.
func fitLabel(name string, width float64) string {
	room := int((width - 6) / charWidth)
	switch {
	case room >= len(name):
		return name
	case room < 4:
		return ""
	}
	return name[:room-2] + ".."
}

// frameColor gives a frame a warm colour of its own kind: the Go runtime
// in orange, system calls in red, other frames in yellows that vary by
// package.
func frameColor(name string) string {
	switch {
	case isSyscall(name):
		return "#e8705c"
	case strings.HasPrefix(name, "runtime.") || strings.HasPrefix(name, "internal/runtime/"):
		return "#f0a050"
	}
	h := fnv.New32a()
	io.WriteString(h, pkgOf(name))
	v := h.Sum32()
	return fmt.Sprintf("rgb(%d,%d,%d)", 225+v%30, 170+(v>>8)%70, 60+(v>>16)%60)
}
