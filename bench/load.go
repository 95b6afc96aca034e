package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/adapter"
)

// traffic makes the n-th request and says whether an answer is right.
type traffic interface {
	request(n int64) *http.Request
	ok(status int, body []byte) bool
}

type webhookTraffic struct {
	url string
	o   options
	// keys numbers every webhook's key, across repetitions: a key seen
	// before would be answered from the dedupe record.
	keys atomic.Int64
}

func (w *webhookTraffic) request(n int64) *http.Request {
	conv := n % int64(w.o.conversations)
	n = w.keys.Add(1)
	ev := kommbridge.Event{BotID: "support-bot", Key: fmt.Sprintf("k-%d", n), UserID: fmt.Sprintf("u-%d", conv), ConversationID: fmt.Sprint(conv),
		Text: "Where is my order?", Context: map[string]string{"kmUserLocale": "en"}}
	if w.o.attachments {
		ev.Attachments = []kommbridge.Attachment{{Type: "image/png", Name: "receipt.png", URL: fmt.Sprintf("https://example.com/f/receipt-%d.png", n), Size: 48213}}
	}
	body := adapter.EncodeEvent(ev)
	r, _ := http.NewRequest(http.MethodPost, w.url, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Kommbridge-Token", benchToken)
	return r
}

var wantAnswer = []byte("Your order shipped on Monday")

func (w *webhookTraffic) ok(status int, body []byte) bool {
	return status == 200 && bytes.Contains(body, wantAnswer)
}

type directTraffic struct {
	url  string
	body []byte
}

func (d *directTraffic) request(int64) *http.Request {
	r, _ := http.NewRequest(http.MethodPost, d.url, bytes.NewReader(d.body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer bench")
	r.Header.Set("X-Bench-Direct", "1")
	return r
}

func (d *directTraffic) ok(status int, body []byte) bool { return status == 200 && len(body) > 0 }

// result is one side's measurements.
type result struct {
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"requests_per_second"`
	P50        float64 `json:"p50_ms"`
	P90        float64 `json:"p90_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	CPUPer1000 float64 `json:"cpu_seconds_per_1000,omitempty"`
	PeakRSSMB  float64 `json:"peak_rss_mb,omitempty"`
	// Peak is the server's runtime at its peak, in --inflight runs.
	Peak      *runtimeStats   `json:"peak_runtime,omitempty"`
	latencies []time.Duration `json:"-"`
}

// trust is the upstream's self-signed certificate file with --tls.
var trust string

func client(conns int) *http.Client {
	t := &http.Transport{
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	if trust != "" {
		pem, _ := os.ReadFile(trust)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		t.TLSClientConfig = &tls.Config{RootCAs: pool}
		t.ForceAttemptHTTP2 = true
	}
	return &http.Client{Transport: t, Timeout: 60 * time.Second}
}

// closedLoop keeps o.conns requests going for warmup + duration and
// measures the last part. proc, when set, is the server whose CPU and
// memory are read; prof, when set, where its CPU profile of the measured
// part comes from and goes.
func closedLoop(t traffic, o options, proc *process, prof profiling) result {
	c := client(o.conns)
	var n atomic.Int64
	var measuring atomic.Bool
	var mu sync.Mutex
	var res result
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var local []time.Duration
			var errs int64
			for {
				select {
				case <-stop:
					mu.Lock()
					res.latencies = append(res.latencies, local...)
					res.Errors += errs
					mu.Unlock()
					return
				default:
				}
				req := t.request(n.Add(1))
				start := time.Now()
				good := do(c, req, t)
				d := time.Since(start)
				if measuring.Load() {
					local = append(local, d)
					if !good {
						errs++
					}
				}
			}
		}()
	}
	time.Sleep(o.warmup)
	var cpu0 time.Duration
	if proc != nil {
		cpu0 = proc.cpu()
	}
	measuring.Store(true)
	start := time.Now()
	if prof.file != "" {
		go prof.take(o.duration)
	}
	time.Sleep(o.duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	var cpu time.Duration
	if proc != nil {
		cpu = proc.cpu() - cpu0
	}
	close(stop)
	wg.Wait()
	c.CloseIdleConnections()
	res.finish(elapsed, cpu, proc)
	return res
}

// inflight sends n requests at once and waits for every answer. stats,
// when set, is the server's runtime figures URL (kommbridge's metrics, or
// the floor's), polled meanwhile for their peaks.
func inflight(t traffic, n int, proc *process, stats string, kommbridge bool) result {
	stop := make(chan struct{})
	var peak func() runtimeStats
	if stats != "" {
		peak = peakStats(stats, kommbridge, stop)
	}
	c := client(n)
	var res result
	res.latencies = make([]time.Duration, n)
	var errs atomic.Int64
	var cpu0 time.Duration
	if proc != nil {
		cpu0 = proc.cpu()
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := t.request(int64(i))
			s := time.Now()
			if !do(c, req, t) {
				errs.Add(1)
			}
			res.latencies[i] = time.Since(s)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	c.CloseIdleConnections()
	var cpu time.Duration
	if proc != nil {
		cpu = proc.cpu() - cpu0
	}
	res.Errors = errs.Load()
	res.finish(elapsed, cpu, proc)
	close(stop)
	if peak != nil {
		p := peak()
		res.Peak = &p
	}
	return res
}

func do(c *http.Client, req *http.Request, t traffic) bool {
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return err == nil && t.ok(resp.StatusCode, body)
}

func (r *result) finish(elapsed, cpu time.Duration, proc *process) {
	r.Requests = int64(len(r.latencies))
	r.Seconds = elapsed.Seconds()
	r.RPS = float64(r.Requests) / r.Seconds
	slices.Sort(r.latencies)
	ms := func(q float64) float64 {
		if len(r.latencies) == 0 {
			return 0
		}
		i := min(int(q*float64(len(r.latencies))), len(r.latencies)-1)
		return float64(r.latencies[i].Microseconds()) / 1000
	}
	r.P50, r.P90, r.P99 = ms(0.50), ms(0.90), ms(0.99)
	if len(r.latencies) > 0 {
		r.Max = float64(r.latencies[len(r.latencies)-1].Microseconds()) / 1000
	}
	if proc != nil && r.Requests > 0 {
		r.CPUPer1000 = cpu.Seconds() / float64(r.Requests) * 1000
		r.PeakRSSMB = float64(proc.peakRSS()) / (1 << 20)
	}
}

// Where kommbridge (server.pprof_addr) and the floor serve their runtime
// profiles when the bench asks for a CPU profile.
const (
	kbPprof    = "127.0.0.1:6061"
	floorPprof = "127.0.0.1:6062"
)

// profiling is a server's CPU profile to take: from its pprof address
// into file.
type profiling struct{ addr, file string }

func (p profiling) take(d time.Duration) {
	secs := max(1, int(d.Seconds())-1)
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", p.addr, secs))
	if err != nil {
		fmt.Println("profile:", err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	os.WriteFile(p.file, b, 0o644)
}

// benchToken is the webhook token kommbridge runs with in the bench; every
// webhook carries it, so the bench measures authentication too.
const benchToken = "bench-token"
