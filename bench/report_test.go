package main

import (
	"encoding/xml"
	"strings"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	var r result
	for i := 1; i <= 1000; i++ {
		r.latencies = append(r.latencies, time.Duration(i)*time.Millisecond)
	}
	r.finish(2*time.Second, 0, nil)
	if r.Requests != 1000 || r.RPS != 500 || r.P50 != 501 || r.P90 != 901 || r.P99 != 991 || r.Max != 1000 {
		t.Errorf("%+v", r)
	}
}

func TestReport(t *testing.T) {
	rep := report{Scenario: "delay 0s, 16 conns & <x>",
		Direct:  result{RPS: 1000, P50: 1, P90: 2, P99: 3, Max: 4},
		Through: result{RPS: 900, P50: 1.5, P90: 2.5, P99: 3.5, Max: 5, CPUPer1000: 0.2, PeakRSSMB: 50}}
	var b strings.Builder
	rep.print(&b)
	for _, want := range []string{"direct to upstream", "through kommbridge", "90.0%", "0.500", "50 MB"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	svg := rep.svg()
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Fatalf("SVG is not XML: %v", err)
	}
	if n := strings.Count(svg, `fill="#4e79a7"/>`) + strings.Count(svg, `fill="#f28e2b"/>`); n != 10 { // 8 bars + 2 legend keys
		t.Errorf("%d coloured rectangles, want 10", n)
	}
}

// With a floor measured in the same run, the report gives kommbridge's
// figures as ratios of the floor's, and medians over repetitions.
func TestReportAgainstTheFloor(t *testing.T) {
	rep := report{Scenario: "delay 0s, 16 conns",
		Direct:  result{Requests: 1, RPS: 10000, P99: 1},
		Floor:   result{Requests: 1, RPS: 8000, P99: 1.5, CPUPer1000: 0.1, PeakRSSMB: 40},
		Through: result{Requests: 1, RPS: 6000, P99: 2.5, CPUPer1000: 0.15, PeakRSSMB: 60}}
	var b strings.Builder
	rep.print(&b)
	for _, want := range []string{"through the floor", "added by the floor", "80.0%", "kommbridge / floor: CPU per webhook 1.50x, throughput 0.75x, peak RSS 1.50x; added p99 +1.50 ms vs the floor's +0.50 ms"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	m := median([]result{{RPS: 3, P99: 9, Requests: 10}, {RPS: 1, P99: 7, Requests: 10}, {RPS: 2, P99: 8, Requests: 10}})
	if m.RPS != 2 || m.P99 != 8 || m.Requests != 10 {
		t.Errorf("median %+v", m)
	}
}
