package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge/llm/llmtest"
)

const errorPolicy = `[{"message":"Sorry, I'm having trouble answering right now."},{"message":"Let me connect you with a teammate.","metadata":{"KM_ASSIGN_TO":""}}]`

func reliabilityServer(t *testing.T, fake *llmtest.Server, yml string) string {
	t.Helper()
	base, stop := startRun(t, writeConfig(t, "log: {level: error}\n"+yml), env(map[string]string{"OPENAI_BASE_URL": fake.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	t.Cleanup(func() { stop() })
	return base
}

func TestRateLimit(t *testing.T) {
	fake := llmtest.New(t)
	fake.Default(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Content: llmtest.Contract("ok", 0.9)} })
	base := reliabilityServer(t, fake, "limits:\n  conversation: {rate: 0.001, burst: 2}\n  message: \"Slow down, please.\"\n")
	for i, want := range []string{`[{"message":"ok"}]`, `[{"message":"ok"}]`, `[{"message":"Slow down, please."}]`} {
		if got := post(t, base, fmt.Sprintf(`{"botId":"b","groupId":1,"message":"m%s"}`, strings.Repeat("!", i))); got != want {
			t.Errorf("message %d: %s, want %s", i, got, want)
		}
	}
	if fake.Calls() != 2 {
		t.Errorf("model calls %d, want 2", fake.Calls())
	}
	if got := post(t, base, `{"botId":"b","groupId":2,"message":"other conversation"}`); got != `[{"message":"ok"}]` {
		t.Errorf("another conversation limited: %s", got)
	}
}

const busyMessage = `[{"message":"I'm answering a lot of people right now. Please send that again in a moment."}]`

func TestDeadPrimaryLiveFallback(t *testing.T) {
	primary, fallback := llmtest.New(t), llmtest.New(t)
	primary.Default(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Status: 503} })
	fallback.Enqueue(llmtest.Reply{Content: llmtest.Contract("Answered by the fallback.", 0.9)})
	base := reliabilityServer(t, primary, fmt.Sprintf("llm:\n  max_retries: 1\n  fallbacks:\n    - {base_url: %q, model: backup-model}\n", fallback.URL()))
	if got := post(t, base, `{"botId":"b","groupId":1,"message":"hi"}`); got != `[{"message":"Answered by the fallback."}]` {
		t.Errorf("got %s", got)
	}
	if primary.Calls() != 2 || fallback.Last(t).Chat.Model != "backup-model" {
		t.Errorf("primary calls %d (want 2), fallback model %q", primary.Calls(), fallback.Last(t).Chat.Model)
	}
}

// With every model slot taken, a webhook waits only while its budget
// allows, then gets the busy message: a burst is not a failure, so nobody
// is handed off (llm.TestConcurrencyBound shows the waiting call never
// reaches the model). The hanging call itself is a model failure.
func TestModelSlotsFull(t *testing.T) {
	fake := llmtest.New(t)
	arrived := make(chan struct{})
	var once sync.Once
	fake.Default(func(llmtest.Request) llmtest.Reply {
		once.Do(func() { close(arrived) })
		return llmtest.Reply{Hang: true}
	})
	base := reliabilityServer(t, fake, "server: {reply_budget: 1s}\nllm: {max_concurrency: 1}\n")
	done := make(chan string)
	go func() { done <- post(t, base, `{"botId":"b","groupId":1,"message":"first"}`) }()
	<-arrived
	if got := post(t, base, `{"botId":"b","groupId":2,"message":"second"}`); got != busyMessage {
		t.Errorf("second: %s", got)
	}
	if got := <-done; got != errorPolicy {
		t.Errorf("first: %s", got)
	}
}

// A caller that closes its connection while the model works is no
// failure: the answer is made anyway, nobody is handed off, and
// Kommunicate's retry of the same key gets the real answer without a
// second model call.
func TestCallerGoneThenRetry(t *testing.T) {
	fake := llmtest.New(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	fake.Default(func(llmtest.Request) llmtest.Reply {
		first.Do(func() { close(arrived); <-release })
		return llmtest.Reply{Content: llmtest.Contract("The real answer.", 0.9)}
	})
	base := reliabilityServer(t, fake, "server: {reply_budget: 5s}\nllm: {breaker: {failures: 1, cooldown: 1m}}\n")
	body := `{"botId":"b","key":"k1","groupId":1,"message":"hi"}`
	ctx, cancel := context.WithCancel(context.Background())
	req := webhook(ctx, base, strings.NewReader(body))
	gone := make(chan error)
	go func() {
		_, err := http.DefaultClient.Do(req)
		gone <- err
	}()
	<-arrived
	cancel() // the caller goes away while the model works
	if err := <-gone; err == nil {
		t.Fatal("the cancelled request got an answer")
	}
	// The model answers once the server has seen the caller leave.
	waitMetric(t, base, "kommbridge_callers_gone_total 1")
	close(release)
	if got := post(t, base, body); got != `[{"message":"The real answer."}]` {
		t.Errorf("retry of the key: %s", got)
	}
	if got := post(t, base, `{"botId":"b","key":"k2","groupId":1,"message":"again"}`); got != `[{"message":"The real answer."}]` {
		t.Errorf("next message: %s", got)
	}
	if fake.Calls() != 2 {
		t.Errorf("model calls %d, want 2 (one per key)", fake.Calls())
	}
	// The gone caller's webhook is counted once its handler returns, which
	// may be after the retry was answered.
	metrics := waitMetric(t, base, `kommbridge_webhook_duration_seconds_count{outcome="caller_gone"} 1`)
	for _, want := range []string{`kommbridge_webhook_duration_seconds_count{outcome="caller_gone"} 1`, `kommbridge_breaker_open{endpoint=`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, l := range strings.Split(grepLines(metrics, "kommbridge_handoffs_total{"), "\n") {
		if !strings.HasSuffix(l, " 0") {
			t.Errorf("a handoff was counted: %s", l)
		}
	}
	if strings.Contains(metrics, `kommbridge_breaker_open{endpoint="127.0.0.1`) && strings.Contains(grepLines(metrics, "breaker_open"), "} 1") {
		t.Errorf("breaker opened by a caller that went away:\n%s", grepLines(metrics, "breaker_open"))
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// waitMetric polls base's /metrics until it holds line, for at most 10 s,
// and returns the last scrape.
func waitMetric(t *testing.T, base, line string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := get(t, base+"/metrics")
		if strings.Contains(m, line) || time.Now().After(deadline) {
			return m
		}
		runtime.Gosched()
	}
}
