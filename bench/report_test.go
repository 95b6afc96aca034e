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
