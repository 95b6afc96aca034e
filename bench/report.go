package main

import (
	"fmt"
	"io"
	"strings"
)

type report struct {
	Machine  string `json:"machine"`
	Scenario string `json:"scenario"`
	Direct   result `json:"direct"`
	Through  result `json:"through_kommbridge"`
}

func (r report) print(w io.Writer) {
	fmt.Fprintf(w, "%-20s %10s %9s %9s %9s %9s %8s %12s %10s\n", "", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "CPU s/1000", "peak RSS")
	row := func(name string, x result) {
		cpu, rss := "", ""
		if x.CPUPer1000 > 0 {
			cpu = fmt.Sprintf("%.3f", x.CPUPer1000)
			rss = fmt.Sprintf("%.0f MB", x.PeakRSSMB)
		}
		fmt.Fprintf(w, "%-20s %10.0f %9.3f %9.3f %9.3f %9.1f %8d %12s %10s\n", name, x.RPS, x.P50, x.P90, x.P99, x.Max, x.Errors, cpu, rss)
	}
	row("direct to upstream", r.Direct)
	row("through kommbridge", r.Through)
	fmt.Fprintf(w, "%-20s %10s %9.3f %9.3f %9.3f %9.1f\n", "added", fmt.Sprintf("%.1f%%", 100*r.Through.RPS/r.Direct.RPS),
		r.Through.P50-r.Direct.P50, r.Through.P90-r.Direct.P90, r.Through.P99-r.Direct.P99, r.Through.Max-r.Direct.Max)
	fmt.Fprintf(w, "(\"added\" req/s is through as a share of direct)\n")
}

// svg draws p50/p90/p99/max for both sides as grouped bars.
func (r report) svg() string {
	labels := []string{"p50", "p90", "p99", "max"}
	direct := []float64{r.Direct.P50, r.Direct.P90, r.Direct.P99, r.Direct.Max}
	through := []float64{r.Through.P50, r.Through.P90, r.Through.P99, r.Through.Max}
	top := 0.0
	for i := range direct {
		top = max(top, direct[i], through[i])
	}
	if top == 0 {
		top = 1
	}
	const w, h, left, bottom = 640, 360, 60, 40
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="20" font-size="14">kommbridge latency: %s</text>`+"\n", left, escape(r.Scenario))
	plotH := float64(h - bottom - 40)
	for i := 0; i <= 4; i++ {
		y := float64(h-bottom) - plotH*float64(i)/4
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.0f" y2="%.0f" stroke="#ddd"/><text x="%d" y="%.0f" text-anchor="end">%.2f ms</text>`+"\n", left, w-20, y, y, left-5, y+4, top*float64(i)/4)
	}
	group := float64(w-left-40) / float64(len(labels))
	for i, l := range labels {
		x := float64(left) + group*float64(i) + 10
		for j, v := range []float64{direct[i], through[i]} {
			bh := plotH * v / top
			color := []string{"#4e79a7", "#f28e2b"}[j]
			fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="%s"/>`+"\n", x+float64(j)*(group/2-5), float64(h-bottom)-bh, group/2-10, bh, color)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">%s</text>`+"\n", x+group/2-10, h-bottom+16, l)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="30" width="10" height="10" fill="#4e79a7"/><text x="%d" y="39">direct to upstream</text>`+"\n", w-220, w-205)
	fmt.Fprintf(&b, `<rect x="%d" y="46" width="10" height="10" fill="#f28e2b"/><text x="%d" y="55">through kommbridge</text>`+"\n", w-220, w-205)
	b.WriteString("</svg>\n")
	return b.String()
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
