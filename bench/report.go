package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

type report struct {
	Machine  string `json:"machine"`
	Scenario string `json:"scenario"`
	Reps     int    `json:"repetitions"`
	Direct   result `json:"direct"`
	Floor    result `json:"through_floor"`
	Through  result `json:"through_kommbridge"`
	Ratios   ratios `json:"kommbridge_to_floor"`
}

// ratios are kommbridge's figures over the floor's, from the same run.
type ratios struct {
	CPU        float64 `json:"cpu_per_webhook"`
	Throughput float64 `json:"throughput"`
	// AddedP99 are the p99 each bridge adds to the direct call, in ms.
	AddedP99Floor      float64 `json:"added_p99_floor_ms"`
	AddedP99Kommbridge float64 `json:"added_p99_kommbridge_ms"`
	RSS                float64 `json:"peak_rss"`
}

func (r *report) ratios() ratios {
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	r.Ratios = ratios{
		CPU: div(r.Through.CPUPer1000, r.Floor.CPUPer1000), Throughput: div(r.Through.RPS, r.Floor.RPS),
		AddedP99Floor: r.Floor.P99 - r.Direct.P99, AddedP99Kommbridge: r.Through.P99 - r.Direct.P99,
		RSS: div(r.Through.PeakRSSMB, r.Floor.PeakRSSMB),
	}
	return r.Ratios
}

// median is each figure's median over repetitions.
func median(rs []result) result {
	if len(rs) == 1 {
		return rs[0]
	}
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	var errs int64
	for _, r := range rs {
		errs += r.Errors
	}
	return result{Requests: int64(pick(func(r result) float64 { return float64(r.Requests) })), Errors: errs, Peak: rs[len(rs)-1].Peak,
		Seconds: pick(func(r result) float64 { return r.Seconds }), RPS: pick(func(r result) float64 { return r.RPS }),
		P50: pick(func(r result) float64 { return r.P50 }), P90: pick(func(r result) float64 { return r.P90 }),
		P99: pick(func(r result) float64 { return r.P99 }), Max: pick(func(r result) float64 { return r.Max }),
		CPUPer1000: pick(func(r result) float64 { return r.CPUPer1000 }), PeakRSSMB: pick(func(r result) float64 { return r.PeakRSSMB })}
}

func (r report) print(w io.Writer) {
	fmt.Fprintf(w, "%-20s %10s %9s %9s %9s %9s %8s %12s %10s\n", "", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "CPU ms/hook", "peak RSS")
	row := func(name string, x result) {
		cpu, rss := "", ""
		if x.CPUPer1000 > 0 {
			cpu = fmt.Sprintf("%.3f", x.CPUPer1000) // seconds per 1000 = ms per webhook
			rss = fmt.Sprintf("%.0f MB", x.PeakRSSMB)
		}
		fmt.Fprintf(w, "%-20s %10.0f %9.3f %9.3f %9.3f %9.1f %8d %12s %10s\n", name, x.RPS, x.P50, x.P90, x.P99, x.Max, x.Errors, cpu, rss)
	}
	row("direct to upstream", r.Direct)
	if r.Floor.Requests > 0 {
		row("through the floor", r.Floor)
	}
	row("through kommbridge", r.Through)
	added := func(name string, x result) {
		fmt.Fprintf(w, "%-20s %10s %9.3f %9.3f %9.3f %9.1f\n", name, fmt.Sprintf("%.1f%%", 100*x.RPS/r.Direct.RPS),
			x.P50-r.Direct.P50, x.P90-r.Direct.P90, x.P99-r.Direct.P99, x.Max-r.Direct.Max)
	}
	if r.Floor.Requests > 0 {
		added("added by the floor", r.Floor)
	}
	added("added by kommbridge", r.Through)
	fmt.Fprintf(w, "(\"added\" req/s is a bridge's throughput as a share of direct; the rest is latency added to it)\n")
	for _, side := range []struct {
		name string
		x    result
	}{{"the floor", r.Floor}, {"kommbridge", r.Through}} {
		if p := side.x.Peak; p != nil && side.x.Requests > 0 {
			n := float64(side.x.Requests)
			fmt.Fprintf(w, "%s at its peak: %.0f goroutines (%.1f per webhook), stacks %.0f MB (%.1f KB per webhook), heap %.0f MB (%.1f KB per webhook)\n",
				side.name, p.Goroutines, p.Goroutines/n, p.StackInuse/(1<<20), p.StackInuse/1024/n, p.HeapInuse/(1<<20), p.HeapInuse/1024/n)
		}
	}
	if r.Floor.Requests > 0 {
		x := r.ratios()
		fmt.Fprintf(w, "kommbridge / floor: CPU per webhook %.2fx, throughput %.2fx, peak RSS %.2fx; added p99 %+.2f ms vs the floor's %+.2f ms\n",
			x.CPU, x.Throughput, x.RSS, x.AddedP99Kommbridge, x.AddedP99Floor)
	}
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
