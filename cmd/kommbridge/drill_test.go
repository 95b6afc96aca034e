package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/kommbridge/kommbridge/llm/llmtest"
	"github.com/kommbridge/kommbridge/store/redis/redistest"
)

// The fault drill runs the real binary as two replicas on a real
// redis-server, under bounded load from a stand-in for Kommunicate, and
// injects production's ordinary accidents in turn: broken model bodies, a
// hanging model, callers that disconnect, Redis stopped and stalled, kill
// -9 of a replica mid-answer, and a burst past the model slots. For each
// it asserts what users got: no 5xx, no handoff the fault did not call
// for, every retried key answered for real, and the first message after
// the fault clears answered within a second. Run it alone with
//
//	go test -run TestFaultDrill -v ./cmd/kommbridge
//
// to see the table of what each fault cost.
func TestFaultDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("the drill builds the binary and runs for about a minute")
	}
	r := redistest.Start(t)
	if r.External {
		t.Skip("REDIS_URL names an external server; the drill stops and stalls its own")
	}
	bin := buildBinary(t)
	m := newDrillModel(t)
	d := &drill{t: t, model: m, client: &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4096}}}
	// Budgets shortened so that the drill fits CI; every other key is the default.
	path := writeConfig(t, fmt.Sprintf("server: {reply_budget: 8s}\nstore: {url: %q, lease: 2s}\nlog: {level: warn}\n", r.URL))
	a := startReplica(t, bin, path, m.URL())
	b := startReplica(t, bin, path, m.URL())
	d.replicas = []string{a.base, b.base}
	lease := 2 * time.Second

	d.phase("healthy", 0, func(p *phase) { d.load(p, 1500*time.Millisecond, 8) })

	d.phase("broken body on each message's first call", 0, func(p *phase) {
		m.mode.Store(modeFirstBroken)
		d.load(p, 2*time.Second, 8)
		m.mode.Store(modeHealthy)
		p.recovered(d.probe(p))
	})

	// Every call fails: the users of those messages are handed off (a real
	// model failure), the breaker opens; the model heals and the next
	// message is answered at once.
	d.phase("broken bodies, every call (6 messages)", 6, func(p *phase) {
		m.mode.Store(modeBroken)
		for i := 0; i < 6; i++ {
			p.add(d.send(d.replicas[0], d.next(p, i))) // enough to open replica 0's breaker
		}
		m.mode.Store(modeHealthy)
		p.recovered(d.probe(p))
	})

	d.phase("hanging model (4 messages)", 4, func(p *phase) {
		m.mode.Store(modeHang)
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			msg := d.next(p, i)
			wg.Go(func() { p.add(d.send(d.replicas[i%2], msg)) })
		}
		m.waitCalls(t, 4)
		wg.Wait()
		m.mode.Store(modeHealthy)
		p.recovered(d.probe(p))
	})

	d.phase("32 callers disconnecting, then Kommunicate's retry", 0, func(p *phase) {
		m.delay.Store(int64(400 * time.Millisecond))
		defer m.delay.Store(int64(20 * time.Millisecond))
		msgs := make([]drillMsg, 32)
		var wg sync.WaitGroup
		for i := range msgs {
			msgs[i] = d.next(p, i)
			wg.Go(func() {
				// The caller hangs up once its message is at the model.
				ctx, cancel := context.WithCancel(context.Background())
				go func() { <-m.arrival(msgs[i].text); cancel() }()
				resp, err := d.client.Do(webhook(ctx, d.replicas[i%2], bytes.NewReader(msgs[i].body())))
				if err == nil {
					resp.Body.Close()
					t.Errorf("caller %d was answered before hanging up", i)
				}
			})
		}
		wg.Wait()
		before := m.calls.Load()
		for i, msg := range msgs {
			wg.Go(func() { p.add(d.send(d.replicas[(i+1)%2], msg)) }) // the retry may reach the other replica
		}
		wg.Wait()
		if extra := m.calls.Load() - before; extra > 0 {
			t.Errorf("%d retried keys called the model again instead of getting the answer made for them", extra)
		}
	})

	for _, stall := range []struct {
		name          string
		start, finish func()
	}{
		{"Redis stopped for 3 s", r.Kill, func() { r.Start(t) }},
		{"Redis stalled for 3 s (SIGSTOP)", r.Pause, r.Resume},
	} {
		d.phase(stall.name, 0, func(p *phase) {
			done := make(chan struct{})
			go func() { defer close(done); d.load(p, 5*time.Second, 8) }()
			time.Sleep(time.Second)
			stall.start()
			time.Sleep(3 * time.Second)
			stall.finish()
			<-done
			p.recovered(d.probe(p))
			// A conversation whose lock was orphaned in the fault waits one lease at most.
			if took := d.sameConversation(p); took > lease+time.Second {
				t.Errorf("%s: a conversation used during the fault waited %v after it", stall.name, took)
			}
		})
	}

	d.phase("kill -9 of a replica mid-answer, retry at the other", 0, func(p *phase) {
		// Both replicas on Redis again (not on their stand-ins after the
		// stall), so that the dead one's claims and locks are in Redis.
		waitReady(t, a.base)
		waitReady(t, b.base)
		m.delay.Store(int64(time.Second))
		defer m.delay.Store(int64(20 * time.Millisecond))
		before := m.calls.Load()
		msgs := make([]drillMsg, 8)
		var wg sync.WaitGroup
		for i := range msgs {
			msgs[i] = d.next(p, i)
			wg.Go(func() { d.send(a.base, msgs[i]) }) // these callers see the connection drop
		}
		m.waitCalls(t, before+8)
		a.kill()
		wg.Wait()
		killed := time.Now()
		for _, msg := range msgs {
			wg.Go(func() { p.add(d.send(b.base, msg)) })
		}
		wg.Wait()
		p.recovered(time.Since(killed))
		if p.recovery > 8*time.Second {
			t.Errorf("the retries at the surviving replica took %v, past their own 8s budget", p.recovery)
		}
		d.replicas = []string{b.base, b.base}
	})

	// A burst past the model slots, at the default configuration (25 s
	// budget, default llm.max_concurrency), against a healthy 2 s model.
	c := startReplica(t, bin, writeConfig(t, "log: {level: warn}\n"), m.URL())
	d.phase("2,000 webhooks at once, 2 s model, defaults", 0, func(p *phase) {
		m.delay.Store(int64(2 * time.Second))
		defer m.delay.Store(int64(20 * time.Millisecond))
		var wg sync.WaitGroup
		for i := 0; i < 2000; i++ {
			msg := d.next(p, i)
			wg.Go(func() { p.add(d.send(c.base, msg)) })
		}
		wg.Wait()
	})

	// People send two or three messages in a row: on a healthy 10 s model
	// at the default 25 s budget, messages 2 s apart wait for the first
	// answer, then the newest answers the others with its own in one call.
	d.phase("3 messages 2 s apart, 10 s model, defaults (x4)", 0, func(p *phase) {
		m.delay.Store(int64(10 * time.Second))
		defer m.delay.Store(int64(20 * time.Millisecond))
		var wg sync.WaitGroup
		for conv := range 4 {
			for i := range 3 {
				msg := d.next(p, conv)
				wg.Go(func() {
					time.Sleep(time.Duration(i) * 2 * time.Second)
					p.add(d.send(c.base, msg))
				})
			}
		}
		wg.Wait()
		if n := p.count("answered"); n != 8 || p.count("joined") != 4 {
			t.Errorf("quick messages: %d answered and %d joined, want 8 and 4", n, p.count("joined"))
		}
	})

	// A model that answers 100 MB: the call fails at llm.max_response_bytes
	// (a model failure: the user is handed off), and the process's memory
	// stays bounded.
	d.phase("a 100 MB completion", 1, func(p *phase) {
		idle := rss(t, c.cmd.Process.Pid, "VmRSS")
		m.huge.Store(100 << 20)
		defer m.huge.Store(0)
		p.add(d.send(c.base, d.next(p, 0)))
		if peak := rss(t, c.cmd.Process.Pid, "VmHWM"); peak-idle > 200<<20 {
			t.Errorf("a 100 MB completion took the process from %d MB to %d MB", idle>>20, peak>>20)
		} else {
			t.Logf("a 100 MB completion: %d MB idle, %d MB at the peak", idle>>20, peak>>20)
		}
		m.huge.Store(0)
		p.recovered(d.probe(p, c.base))
	})

	// Held answers through Kommunicate's hiccups: 429 with Retry-After for
	// about 5 s, and a send taken whose connection drops unanswered.
	for _, fault := range []struct {
		name   string
		script []apiReply
	}{
		{"Kommunicate's API 429 for 5 s (Retry-After: 1), held answers", []apiReply{{status: 429, retryAfter: "1"}, {status: 429, retryAfter: "1"},
			{status: 429, retryAfter: "1"}, {status: 429, retryAfter: "1"}, {status: 429, retryAfter: "1"}}},
		{"Kommunicate's API takes a send, drops the connection", []apiReply{{drop: true}}},
	} {
		d.phase(fault.name, 0, func(p *phase) {
			api := newScriptedKommunicate(t, fault.script...)
			h := startReplica(t, bin, writeConfig(t, fmt.Sprintf(`log: {level: warn}
kommunicate: {api_base: %q, api_key: k}
bots: [{id: "*", async: {enabled: true, hold_after: 100ms, max_wait: 20s}}]
`, api.URL)), m.URL())
			m.delay.Store(int64(300 * time.Millisecond))
			defer m.delay.Store(int64(20 * time.Millisecond))
			msg := d.next(p, 0)
			p.add(d.send(h.base, msg))
			got := <-api.got
			if got.Body["message"] != "re: "+msg.text {
				t.Errorf("%s: delivered %v", fault.name, got.Body["message"])
			}
			deliveries := d.waitMetric(h.base, `kommbridge_deliveries_total{result="delivered"} 1`)
			taken := 0
			for _, c := range api.all() {
				if c.Status == 200 || c.Status == 0 {
					taken++
				}
			}
			if taken != 1 || !deliveries {
				t.Errorf("%s: the answer was taken %d times (want once), delivered counted %v", fault.name, taken, deliveries)
			}
		})
	}

	// A bot answering from the help center while its embeddings endpoint
	// fails, then hangs: each message is searched by keywords alone (the
	// question's embedding given up after embeddings.timeout) and
	// answered; nobody is handed off.
	articles, _ := filepath.Abs("../../kb/testdata/helpcenter/articles")
	kbPath := writeConfig(t, fmt.Sprintf(`server: {reply_budget: 8s}
store: {url: %q, lease: 2s}
log: {level: warn}
knowledge:
  - name: help
    sources: [{dir: %q, url_prefix: "https://help.acme.example/"}]
    index: help.kbx
    embeddings: {base_url: %q, api_key: k, model: text-embedding-3-small, dimensions: 256, timeout: 300ms}
bots: [{id: "*", knowledge: {base: help, on_no_match: answer}}]
`, r.URL, articles, m.URL()))
	if out, err := exec.Command(bin, "kb", "build", "--config", kbPath).CombinedOutput(); err != nil {
		t.Fatalf("kb build: %v\n%s", err, out)
	}
	h := startReplica(t, bin, kbPath, m.URL())
	for _, fault := range []struct {
		name  string
		set   func()
		clear func()
	}{
		{"help center, embeddings endpoint answering 503", func() { m.FailEmbeddings(503) }, func() { m.FailEmbeddings(0) }},
		{"help center, embeddings endpoint hanging (timeout 300ms)", func() { m.DelayEmbeddings(time.Minute) }, func() { m.DelayEmbeddings(0) }},
	} {
		d.phase(fault.name, 0, func(p *phase) {
			fault.set()
			end := time.Now().Add(1500 * time.Millisecond)
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for time.Now().Before(end) {
						p.add(d.send(h.base, d.next(p, w)))
					}
				})
			}
			wg.Wait()
			fault.clear()
			p.recovered(d.probe(p, h.base))
		})
	}

	// A bot with an action whose API fails, then hangs: each message is
	// answered, the model told the service did not answer; nobody is
	// handed off.
	var apiFault atomic.Int32 // 1: 500, 2: hang
	orders := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch apiFault.Load() {
		case 1:
			w.WriteHeader(http.StatusInternalServerError)
			return
		case 2:
			<-r.Context().Done()
			return
		}
		w.Write([]byte(`{"status":"shipped"}`))
	}))
	defer orders.Close()
	ordersURL, _ := url.Parse(orders.URL)
	actPath := writeConfig(t, fmt.Sprintf(`server: {reply_budget: 8s}
store: {url: %q, lease: 2s}
log: {level: warn}
media: {allowed_hosts: [%q]}
actions:
  - name: order_status
    description: Look up an order.
    url: %s/orders/{order_id}
    parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
    response_fields: [status]
    timeout: 300ms
bots: [{id: "*", actions: [order_status]}]
`, r.URL, ordersURL.Host, orders.URL))
	ha := startReplica(t, bin, actPath, m.URL())
	for _, fault := range []struct {
		name string
		code int32
	}{{"actions, the order API answering 500", 1}, {"actions, the order API hanging (timeout 300ms)", 2}} {
		d.phase(fault.name, 0, func(p *phase) {
			apiFault.Store(fault.code)
			end := time.Now().Add(1500 * time.Millisecond)
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for time.Now().Before(end) {
						p.add(d.send(ha.base, d.next(p, w)))
					}
				})
			}
			wg.Wait()
			apiFault.Store(0)
			p.recovered(d.probe(p, ha.base))
		})
	}

	// Handoff notes: 20 users ask for a person at once while the note's
	// model takes 2 s. Each answer goes out at once (the note is written
	// after it); the notes arrive some seconds later.
	notes := newScriptedKommunicate(t)
	notePath := writeConfig(t, fmt.Sprintf(`server: {reply_budget: 8s}
store: {url: %q, lease: 2s}
log: {level: warn}
kommunicate: {api_base: %q, api_key: k}
bots: [{id: "*", handoff: {phrases: ["talk to a human"], summary: {enabled: true, timeout: 8s}}}]
`, r.URL, notes.URL))
	hn := startReplica(t, bin, notePath, m.URL())
	// The same handoffs without notes, for the answer's latency beside.
	plainPath := writeConfig(t, fmt.Sprintf(`server: {reply_budget: 8s}
store: {url: %q, lease: 2s}
log: {level: warn}
bots: [{id: "*", handoff: {phrases: ["talk to a human"]}}]
`, r.URL))
	h0 := startReplica(t, bin, plainPath, m.URL())
	d.phase("handoffs without notes (20 at once)", 20, func(p *phase) {
		var wg sync.WaitGroup
		for i := range 20 {
			msg := d.next(p, i)
			msg.text = "talk to a human, " + msg.text
			wg.Go(func() { p.add(d.send(h0.base, msg)) })
		}
		wg.Wait()
	})
	d.phase("handoff notes, 2 s summary model (20 handoffs at once)", 20, func(p *phase) {
		m.delay.Store(int64(2 * time.Second))
		defer m.delay.Store(int64(20 * time.Millisecond))
		answered := make(map[string]time.Time)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 20 {
			msg := d.next(p, i)
			msg.text = "talk to a human, " + msg.text
			wg.Go(func() {
				res := d.send(hn.base, msg)
				mu.Lock()
				answered[msg.conv] = time.Now()
				mu.Unlock()
				p.add(res)
			})
		}
		wg.Wait()
		var lags []time.Duration
		for range 20 {
			select {
			case c := <-notes.got:
				mu.Lock()
				lags = append(lags, time.Since(answered[fmt.Sprint(c.Body["groupId"])]))
				mu.Unlock()
			case <-time.After(30 * time.Second):
				t.Fatalf("handoff notes: %d of 20 arrived", len(lags))
			}
		}
		sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
		t.Logf("handoff notes: after the answer, p50 %s, p95 %s, max %s", lags[len(lags)/2].Round(time.Millisecond),
			lags[len(lags)*95/100].Round(time.Millisecond), lags[len(lags)-1].Round(time.Millisecond))
		if p95 := lags[len(lags)*95/100]; p95 > 10*time.Second {
			t.Errorf("handoff notes p95 %s after the answer, over 10 s", p95)
		}
	})

	d.report()
}

// rss is a process's resident memory ("VmRSS") or its peak ("VmHWM"), in
// bytes, from /proc.
func rss(t *testing.T, pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// waitMetric waits up to 20 s for base's metrics to show line.
func (d *drill) waitMetric(base, line string) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(scrape(d.t, base), line) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

const (
	modeHealthy int32 = iota
	modeFirstBroken
	modeBroken
	modeHang
)

// drillModel is the fake model with a switch: healthy (echoing the user's
// message after delay), a broken body for each message's first call,
// every body broken, or hanging.
type drillModel struct {
	*llmtest.Server
	mode  atomic.Int32
	delay atomic.Int64
	huge  atomic.Int64 // when set, every answer is a completion this large
	calls atomic.Int64
	seen  sync.Map // messages called for, in modeFirstBroken
	// arrived holds, per message text, an event set when a call for it
	// reaches the model.
	arrived sync.Map
}

type event struct {
	once sync.Once
	ch   chan struct{}
}

func (m *drillModel) event(text string) *event {
	e, _ := m.arrived.LoadOrStore(text, &event{ch: make(chan struct{})})
	return e.(*event)
}

// arrival is closed once a call for text reaches the model.
func (m *drillModel) arrival(text string) <-chan struct{} { return m.event(text).ch }

func newDrillModel(t *testing.T) *drillModel {
	m := &drillModel{Server: llmtest.New(t)}
	m.delay.Store(int64(20 * time.Millisecond))
	m.Default(func(req llmtest.Request) llmtest.Reply {
		m.calls.Add(1)
		msgs := req.Chat.Messages
		last := msgs[len(msgs)-1].Content
		if offersTool(req, "order_status") {
			// A bot with actions: look the order up, then answer the
			// user's words.
			if msgs[len(msgs)-1].Role == "user" {
				return llmtest.Reply{ToolCalls: []openai.ToolCall{llmtest.Call("c1", "order_status", `{"order_id":"1234"}`)}}
			}
			for i := len(msgs) - 1; i >= 0; i-- {
				if msgs[i].Role == "user" {
					last = msgs[i].Content
					break
				}
			}
		}
		e := m.event(last)
		e.once.Do(func() { close(e.ch) })
		switch m.mode.Load() {
		case modeBroken:
			return llmtest.Reply{Body: "<html>502 Bad Gateway</html>"}
		case modeFirstBroken:
			if _, again := m.seen.LoadOrStore(last, true); !again {
				return llmtest.Reply{Body: "<html>502 Bad Gateway</html>"}
			}
		case modeHang:
			return llmtest.Reply{Hang: true}
		}
		if n := m.huge.Load(); n > 0 {
			return llmtest.Reply{Huge: n}
		}
		return llmtest.Reply{Delay: time.Duration(m.delay.Load()), Content: llmtest.Contract("re: "+last, 0.9)}
	})
	return m
}

// offersTool reports whether a request offers the tool name.
func offersTool(r llmtest.Request, name string) bool {
	for _, t := range r.Chat.Tools {
		if t.Function != nil && t.Function.Name == name {
			return true
		}
	}
	return false
}

// waitCalls waits until the model has been called n times in all.
func (m *drillModel) waitCalls(t *testing.T, n int64) {
	deadline := time.Now().Add(10 * time.Second)
	for m.calls.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("the model got %d calls, want %d", m.calls.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type replica struct {
	cmd  *exec.Cmd
	base string
}

func (r *replica) kill() {
	r.cmd.Process.Kill() // SIGKILL: no drain, no unlock, no lease handed back
	r.cmd.Wait()
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kommbridge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func startReplica(t *testing.T, bin, path, modelURL string) *replica {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--config", path)
	cmd.Env = append(os.Environ(), "OPENAI_BASE_URL="+modelURL, "KOMMBRIDGE_ADDR=127.0.0.1:0", "OPENAI_API_KEY=k", "KOMMBRIDGE_WEBHOOK_TOKEN="+testToken)
	stdout := &lineWriter{lines: make(chan string, 10)}
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &replica{cmd: cmd}
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		if t.Failed() && testing.Verbose() {
			t.Logf("replica log:\n%s", stderr.String())
		}
	})
	select {
	case line := <-stdout.lines:
		r.base = "http://" + strings.TrimPrefix(line, "kommbridge listening on ")
	case <-time.After(10 * time.Second):
		t.Fatalf("replica did not start:\n%s", stderr.String())
	}
	return r
}

// drillMsg is one user message as Kommunicate posts it.
type drillMsg struct {
	key, conv, text string
}

func (m drillMsg) body() []byte {
	b, _ := json.Marshal(map[string]any{"botId": "bot", "key": m.key, "groupId": m.conv, "message": m.text})
	return b
}

type drill struct {
	t        *testing.T
	model    *drillModel
	client   *http.Client
	replicas []string
	phases   []*phase
	seq      atomic.Int64
}

// result is what one webhook's caller got.
type result struct {
	status  int
	kind    string // answered, busy, handoff, other, failed
	body    string
	latency time.Duration
	msg     drillMsg
}

type phase struct {
	id        string // distinct per phase, so conversations are too
	name      string
	wantHands int // handoffs the fault calls for
	mu        sync.Mutex
	results   []result
	recovery  time.Duration
	lastConv  string
}

func (p *phase) add(r result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.results = append(p.results, r)
	p.lastConv = r.msg.conv
}

func (p *phase) recovered(d time.Duration) { p.recovery = d }

// count is how many webhooks of the phase got kind.
func (p *phase) count(kind string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.results {
		if r.kind == kind {
			n++
		}
	}
	return n
}

func (d *drill) next(p *phase, i int) drillMsg {
	n := d.seq.Add(1)
	return drillMsg{key: fmt.Sprintf("k%d", n), conv: fmt.Sprintf("%s-%d", p.id, i), text: fmt.Sprintf("question %d", n)}
}

// phase runs one fault and checks what users got.
func (d *drill) phase(name string, wantHands int, run func(p *phase)) {
	p := &phase{id: fmt.Sprintf("p%d", len(d.phases)), name: name, wantHands: wantHands}
	d.phases = append(d.phases, p)
	run(p)
	t := d.t
	hands := 0
	for _, r := range p.results {
		switch {
		case r.status >= 500 || r.kind == "failed":
			t.Errorf("%s: %s got status %d (%s)", name, r.msg.key, r.status, r.kind)
		case r.kind == "handoff":
			hands++
		case r.kind == "other":
			t.Errorf("%s: %s got an unexpected answer: %s", name, r.msg.key, r.body)
		case r.kind == "busy":
			t.Errorf("%s: %s got the busy message", name, r.msg.key)
		}
	}
	if hands != wantHands {
		t.Errorf("%s: %d handoffs, want %d (those the fault calls for)", name, hands, wantHands)
	}
	if p.recovery > time.Second && !strings.HasPrefix(name, "kill") {
		t.Errorf("%s: the first message after the fault was answered after %v, want within 1s", name, p.recovery)
	}
}

// load sends messages from workers, each its own conversation, to the
// replicas in turn, for dur.
func (d *drill) load(p *phase, dur time.Duration, workers int) {
	end := time.Now().Add(dur)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for i := 0; time.Now().Before(end); i++ {
				msg := d.next(p, w)
				p.add(d.send(d.replicas[(w+i)%len(d.replicas)], msg))
			}
		})
	}
	wg.Wait()
}

// probe sends one message right after a fault cleared and returns how
// long its real answer took.
func (d *drill) probe(p *phase, base ...string) time.Duration {
	to := d.replicas[0]
	if len(base) > 0 {
		to = base[0]
	}
	r := d.send(to, d.next(p, 99))
	p.add(r)
	if r.kind != "answered" {
		d.t.Errorf("%s: the first message after the fault got %s", p.name, r.kind)
	}
	return r.latency
}

// sameConversation sends one more message in the last conversation used
// and returns how long it took.
func (d *drill) sameConversation(p *phase) time.Duration {
	p.mu.Lock()
	conv := p.lastConv
	p.mu.Unlock()
	n := d.seq.Add(1)
	r := d.send(d.replicas[1], drillMsg{key: fmt.Sprintf("k%d", n), conv: conv, text: fmt.Sprintf("question %d", n)})
	p.add(r)
	return r.latency
}

const (
	drillBusy = "I'm answering a lot of people right now. Please send that again in a moment."
	drillHold = "Give me a moment, I'm looking into this."
)

func (d *drill) send(base string, msg drillMsg) result {
	start := time.Now()
	res := result{msg: msg}
	resp, err := d.client.Do(webhook(context.Background(), base, bytes.NewReader(msg.body())))
	res.latency = time.Since(start)
	if err != nil {
		res.kind = "failed"
		return res
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	res.status, res.body = resp.StatusCode, string(body)
	var out []struct {
		Message  string         `json:"message"`
		Metadata map[string]any `json:"metadata"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &out) != nil {
		res.kind = "failed"
		return res
	}
	if len(out) == 0 {
		res.kind = "joined" // answered with a newer message of the conversation
		return res
	}
	for _, m := range out {
		if _, ok := m.Metadata["KM_ASSIGN_TO"]; ok {
			res.kind = "handoff"
			return res
		}
	}
	switch out[0].Message {
	case "re: " + msg.text:
		res.kind = "answered"
	case drillBusy:
		res.kind = "busy"
	case drillHold:
		res.kind = "held"
	default:
		res.kind = "other"
	}
	return res
}

// report logs what each fault cost users, for docs/operations.md.
func (d *drill) report() {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%-62s %8s %8s %6s %8s %9s %9s %10s\n", "fault", "webhooks", "answered", "busy", "handoffs", "p50", "max", "recovery")
	for _, p := range d.phases {
		var lat []time.Duration
		n := map[string]int{}
		for _, r := range p.results {
			n[r.kind]++
			lat = append(lat, r.latency)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		rec := "-"
		if p.recovery > 0 {
			rec = p.recovery.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "%-62s %8d %8d %6d %8d %9s %9s %10s\n", p.name, len(p.results), n["answered"]+n["joined"]+n["held"], n["busy"], n["handoff"],
			lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), rec)
	}
	d.t.Log(b.String())
}
