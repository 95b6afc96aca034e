package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// runtimeStats are a Go process's goroutines and memory at one moment.
type runtimeStats struct {
	Goroutines float64 `json:"goroutines"`
	StackInuse float64 `json:"stack_inuse_bytes"`
	HeapInuse  float64 `json:"heap_inuse_bytes"`
}

// peakStats polls a process's runtime figures every 100ms until stop is
// closed, and keeps each one's highest value: where the memory of many
// webhooks in flight goes (goroutine stacks, or heap).
func peakStats(url string, kommbridge bool, stop <-chan struct{}) func() runtimeStats {
	var mu sync.Mutex
	var peak runtimeStats
	done := make(chan struct{})
	go func() {
		defer close(done)
		c := &http.Client{Timeout: 2 * time.Second}
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			s, ok := readStats(c, url, kommbridge)
			if !ok {
				continue
			}
			mu.Lock()
			peak.Goroutines, peak.StackInuse, peak.HeapInuse = max(peak.Goroutines, s.Goroutines), max(peak.StackInuse, s.StackInuse), max(peak.HeapInuse, s.HeapInuse)
			mu.Unlock()
		}
	}()
	return func() runtimeStats {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// readStats reads kommbridge's Prometheus /metrics, or the floor's /stats.
func readStats(c *http.Client, url string, kommbridge bool) (runtimeStats, bool) {
	resp, err := c.Get(url)
	if err != nil {
		return runtimeStats{}, false
	}
	defer resp.Body.Close()
	var s runtimeStats
	if !kommbridge {
		return s, json.NewDecoder(resp.Body).Decode(&s) == nil
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_goroutines":
			s.Goroutines = v
		case "go_memstats_stack_inuse_bytes":
			s.StackInuse = v
		case "go_memstats_heap_inuse_bytes":
			s.HeapInuse = v
		}
	}
	return s, true
}

// serveStats is the floor's /stats.
func serveStats(w http.ResponseWriter, _ *http.Request) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	json.NewEncoder(w).Encode(runtimeStats{Goroutines: float64(runtime.NumGoroutine()), StackInuse: float64(m.StackInuse), HeapInuse: float64(m.HeapInuse)})
}
