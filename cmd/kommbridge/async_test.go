package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kommbridge/kommbridge/llm/llmtest"
	"github.com/kommbridge/kommbridge/store/redis/redistest"
)

// fakeKommunicate is Kommunicate's REST API: it records every send and
// answers the scripted replies first, then 200; it lists what it took at
// /rest/ws/message/list.
type fakeKommunicate struct {
	*httptest.Server
	mu     sync.Mutex
	calls  []apiCall
	script []apiReply
	taken  []map[string]any // the messages it took, as the list shows them
	noList bool             // answer 404 to the list
	got    chan apiCall     // every send that was taken
	listed atomic.Int32
}

type apiCall struct {
	Path   string
	APIKey string
	Body   map[string]any
	Status int
}

// apiReply is a scripted answer to a send: a status (with Retry-After),
// or drop: take the message, then close the connection unanswered.
type apiReply struct {
	status     int
	retryAfter string
	drop       bool
}

func newFakeKommunicate(t *testing.T, statuses ...int) *fakeKommunicate {
	var script []apiReply
	for _, s := range statuses {
		script = append(script, apiReply{status: s})
	}
	return newScriptedKommunicate(t, script...)
}

func newScriptedKommunicate(t *testing.T, script ...apiReply) *fakeKommunicate {
	f := &fakeKommunicate{script: script, got: make(chan apiCall, 100)}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/rest/ws/message/list" {
			f.listed.Add(1)
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.noList {
				http.NotFound(w, r)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"status": "success", "response": map[string]any{"message": f.taken}})
			return
		}
		b, _ := io.ReadAll(r.Body)
		c := apiCall{Path: r.URL.Path, APIKey: r.Header.Get("Api-Key"), Status: 200}
		json.Unmarshal(b, &c.Body)
		f.mu.Lock()
		rep := apiReply{status: 200}
		if len(f.script) > 0 {
			rep, f.script = f.script[0], f.script[1:]
		}
		c.Status = rep.status
		if rep.drop || rep.status == 200 {
			f.taken = append(f.taken, map[string]any{"message": c.Body["message"], "metadata": c.Body["metadata"]})
		}
		f.calls = append(f.calls, c)
		f.mu.Unlock()
		if rep.drop {
			f.got <- c
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
			return
		}
		if rep.retryAfter != "" {
			w.Header().Set("Retry-After", rep.retryAfter)
		}
		w.WriteHeader(c.Status)
		if c.Status == 200 {
			io.WriteString(w, `{"status":"success"}`)
			f.got <- c
		} else {
			io.WriteString(w, `{"status":"error"}`)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeKommunicate) all() []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiCall(nil), f.calls...)
}

// slowModel answers "slow ..." messages only when released; others at once.
type slowModel struct {
	*llmtest.Server
	release chan struct{}
	arrived chan string
}

func newSlowModel(t *testing.T, answer func(last string, n int) string) *slowModel {
	m := &slowModel{Server: llmtest.New(t), release: make(chan struct{}), arrived: make(chan string, 10)}
	m.Default(func(r llmtest.Request) llmtest.Reply {
		last := r.Chat.Messages[len(r.Chat.Messages)-1].Content
		m.arrived <- last
		if strings.HasPrefix(last, "slow") {
			<-m.release
		}
		return llmtest.Reply{Content: answer(last, len(r.Chat.Messages)-2)}
	})
	return m
}

func asyncConfig(t *testing.T, api string, store string) string {
	return writeConfig(t, fmt.Sprintf(`
server: {reply_budget: 3s, shutdown_grace: 200ms}
store: {url: %q}
kommunicate: {api_base: %q, api_key: km-secret, takeover_after: 300ms}
log: {level: info}
bots:
  - id: "*"
    async: {enabled: true, hold_after: 200ms, hold_message: "One moment, I'm checking.", max_wait: 20s}
`, store, api))
}

const hold = `[{"message":"One moment, I'm checking."}]`

func TestAsyncDelivery(t *testing.T) {
	api := newFakeKommunicate(t)
	model := newSlowModel(t, func(last string, n int) string {
		return llmtest.Contract(fmt.Sprintf("re: %s (%d in history)", last, n), 0.9, "Track my order")
	})
	p := startProcess(t, asyncConfig(t, api.URL, "memory://"), env(map[string]string{"OPENAI_BASE_URL": model.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	defer func() { p.cancel(); <-p.errc }()

	// A fast answer is given in the webhook, as usual.
	if got := post(t, p.base, `{"botId":"bot","key":"f1","groupId":7,"message":"fast"}`); got != `[{"message":"re: fast (0 in history)","metadata":{"contentType":"300","templateId":"6","payload":[{"title":"Track my order","message":"Track my order","replyMetadata":{"kommbridge_button":"quick_reply"}}]}}]` {
		t.Errorf("fast answer: %s", got)
	}
	// A slow one gets the hold message within the budget...
	client := &http.Client{Timeout: 3 * time.Second}
	resp, err := client.Do(webhook(context.Background(), p.base, strings.NewReader(`{"botId":"bot","key":"s1","groupId":7,"message":"slow question"}`)))
	if err != nil {
		t.Fatalf("no answer within the budget: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != hold {
		t.Errorf("webhook answer %s, want the hold message", b)
	}
	if len(api.all()) != 0 {
		t.Error("delivered before the model answered")
	}
	// ...and the answer arrives through the API, once, as the bot.
	close(model.release)
	got := <-api.got
	want := apiCall{Path: "/rest/ws/message/v2/send", APIKey: "km-secret", Status: 200, Body: map[string]any{
		"groupId": "7", "fromUserName": "bot", "message": "re: slow question (2 in history)",
		"metadata": map[string]any{"contentType": "300", "templateId": "6", "payload": `[{"title":"Track my order","message":"Track my order","replyMetadata":{"kommbridge_button":"quick_reply"}}]`,
			"kommbridge_delivery": "deliver/bot/s1/0/0"},
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delivery (-want +got):\n%s", diff)
	}
	p.stderr.waitFor(t, "held answer delivered", 0)
	// History has the delivered answer.
	post(t, p.base, `{"botId":"bot","key":"f2","groupId":7,"message":"fast again"}`)
	var hist []string
	for _, m := range model.Last(t).Chat.Messages[1:] {
		hist = append(hist, m.Content)
	}
	if diff := cmp.Diff([]string{"fast", "re: fast (0 in history)", "slow question", "re: slow question (2 in history)", "fast again"}, hist); diff != "" {
		t.Errorf("history (-want +got):\n%s", diff)
	}
	if n := len(api.all()); n != 1 {
		t.Errorf("%d API calls, want 1", n)
	}
	if m := scrape(t, p.base); !strings.Contains(m, `kommbridge_deliveries_total{result="delivered"} 1`) {
		t.Error("delivery not counted")
	}
}

// A newer message arriving while an answer is pending is answered after it.
func TestAsyncOrder(t *testing.T) {
	api := newFakeKommunicate(t)
	model := newSlowModel(t, func(last string, n int) string {
		return llmtest.Contract(fmt.Sprintf("re: %s (%d in history)", last, n), 0.9)
	})
	p := startProcess(t, asyncConfig(t, api.URL, "memory://"), env(map[string]string{"OPENAI_BASE_URL": model.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	defer func() { p.cancel(); <-p.errc }()

	if got := post(t, p.base, `{"botId":"bot","key":"1","groupId":8,"message":"slow first"}`); got != hold {
		t.Fatalf("first: %s", got)
	}
	<-model.arrived
	if got := post(t, p.base, `{"botId":"bot","key":"2","groupId":8,"message":"second"}`); got != hold {
		t.Fatalf("second (waiting behind the first): %s", got)
	}
	close(model.release)
	first, second := <-api.got, <-api.got
	if first.Body["message"] != "re: slow first (0 in history)" || second.Body["message"] != "re: second (2 in history)" {
		t.Errorf("deliveries out of order or without history: %v then %v", first.Body["message"], second.Body["message"])
	}
}

// A conversation handed off while an answer is pending gets no late answer.
func TestAsyncNoDeliveryAfterHandoff(t *testing.T) {
	api := newFakeKommunicate(t)
	model := newSlowModel(t, func(last string, n int) string { return llmtest.Contract("too late", 0.9) })
	p := startProcess(t, asyncConfig(t, api.URL, "memory://"), env(map[string]string{"OPENAI_BASE_URL": model.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	defer func() { p.cancel(); <-p.errc }()

	if got := post(t, p.base, `{"botId":"bot","key":"1","groupId":9,"message":"slow one"}`); got != hold {
		t.Fatalf("first: %s", got)
	}
	<-model.arrived
	if got := post(t, p.base, `{"botId":"bot","key":"2","groupId":9,"message":"Talk to human","metadata":{"TALK_TO_HUMAN":true}}`); !strings.Contains(got, "KM_ASSIGN_TO") {
		t.Fatalf("button: %s", got)
	}
	close(model.release)
	p.stderr.waitFor(t, "held answer dropped", 0)
	if calls := api.all(); len(calls) != 0 {
		t.Errorf("delivered after a handoff: %v", calls)
	}
}

// 5xx from Kommunicate is retried; the message is posted once.
func TestAsyncRetriesOn500(t *testing.T) {
	api := newFakeKommunicate(t, 500, 502)
	model := newSlowModel(t, func(last string, n int) string { return llmtest.Contract("finally", 0.9) })
	p := startProcess(t, asyncConfig(t, api.URL, "memory://"), env(map[string]string{"OPENAI_BASE_URL": model.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	defer func() { p.cancel(); <-p.errc }()
	post(t, p.base, `{"botId":"bot","key":"1","groupId":10,"message":"slow"}`)
	close(model.release)
	if got := <-api.got; got.Body["message"] != "finally" {
		t.Errorf("delivered %v", got.Body)
	}
	p.stderr.waitFor(t, "held answer delivered", 0)
	calls := api.all()
	if len(calls) != 3 || calls[0].Status != 500 || calls[1].Status != 502 || calls[2].Status != 200 {
		t.Errorf("calls %+v, want 500, 502, 200", calls)
	}
}

// With Redis, a held answer of a replica that stopped is delivered by
// another one.
func TestAsyncTakeoverWithRedis(t *testing.T) {
	r := redistest.Start(t)
	api := newFakeKommunicate(t)
	var calls atomic.Int32
	model := llmtest.New(t)
	arrived := make(chan struct{}, 1)
	model.Default(func(req llmtest.Request) llmtest.Reply {
		if calls.Add(1) == 1 {
			arrived <- struct{}{}
			return llmtest.Reply{Hang: true} // the first replica never hears back
		}
		return llmtest.Reply{Content: llmtest.Contract("answered by the second replica", 0.9)}
	})
	path := asyncConfig(t, api.URL, r.URL)
	getenv := env(map[string]string{"OPENAI_BASE_URL": model.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"})
	a := startProcess(t, path, getenv)
	if got := post(t, a.base, `{"botId":"bot","key":"k1","groupId":11,"message":"slow"}`); got != hold {
		t.Fatalf("hold: %s", got)
	}
	<-arrived
	a.cancel() // shutdown_grace 200ms: the held answer is left in Redis
	<-a.errc
	if len(api.all()) != 0 {
		t.Fatal("the stopped replica delivered")
	}
	b := startProcess(t, path, getenv)
	defer func() { b.cancel(); <-b.errc }()
	got := <-api.got
	if got.Body["message"] != "answered by the second replica" || got.Body["groupId"] != "11" {
		t.Errorf("delivered %v", got.Body)
	}
	b.stderr.waitFor(t, "held answer delivered", 0)
	if n := len(api.all()); n != 1 {
		t.Errorf("%d deliveries, want 1", n)
	}
}

// Kommunicate's API answering 429 with Retry-After for seconds: the held
// answer is sent again when it says, until it is taken, once.
func TestAsyncHonoursRetryAfter(t *testing.T) {
	api := newScriptedKommunicate(t, apiReply{status: 429, retryAfter: "1"}, apiReply{status: 429, retryAfter: "1"}, apiReply{status: 503, retryAfter: "1"})
	model := newSlowModel(t, func(last string, n int) string { return llmtest.Contract("here it is", 0.9) })
	p := startProcess(t, asyncConfig(t, api.URL, "memory://"), env(map[string]string{"OPENAI_BASE_URL": model.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	defer func() { p.cancel(); <-p.errc }()
	post(t, p.base, `{"botId":"bot","key":"1","groupId":20,"message":"slow"}`)
	close(model.release)
	start := time.Now()
	if got := <-api.got; got.Body["message"] != "here it is" {
		t.Errorf("delivered %v", got.Body)
	}
	p.stderr.waitFor(t, "held answer delivered", 0)
	if took := time.Since(start); took < 2500*time.Millisecond {
		t.Errorf("sent again after %v, before the Retry-After of three answers", took)
	}
	if calls := api.all(); len(calls) != 4 {
		t.Errorf("%d sends, want 3 refused and 1 taken", len(calls))
	}
}

// A send Kommunicate takes but never answers (the connection drops): the
// conversation's latest messages are looked at, the message is there, and
// it is not sent again. Without a list to look at, it is not sent again
// either: the user may have it.
func TestAsyncTakenThenDropped(t *testing.T) {
	for _, list := range []bool{true, false} {
		t.Run(fmt.Sprintf("list %v", list), func(t *testing.T) {
			api := newScriptedKommunicate(t, apiReply{drop: true})
			api.noList = !list
			model := newSlowModel(t, func(last string, n int) string { return llmtest.Contract("only once", 0.9) })
			p := startProcess(t, asyncConfig(t, api.URL, "memory://"), env(map[string]string{"OPENAI_BASE_URL": model.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
			defer func() { p.cancel(); <-p.errc }()
			post(t, p.base, `{"botId":"bot","key":"1","groupId":21,"message":"slow"}`)
			close(model.release)
			<-api.got
			want, result := "held answer delivered", `kommbridge_deliveries_total{result="delivered"} 1`
			if !list {
				want, result = "held answer may not have arrived; not sent again", `kommbridge_deliveries_total{result="unsure"} 1`
			}
			p.stderr.waitFor(t, want, 0)
			if calls := api.all(); len(calls) != 1 || api.listed.Load() != 1 {
				t.Errorf("%d sends and %d looks, want 1 and 1", len(calls), api.listed.Load())
			}
			if m := scrape(t, p.base); !strings.Contains(m, result) {
				t.Errorf("metrics lack %s", result)
			}
		})
	}
}

// A held answer that cannot be delivered hands the conversation to a
// person (the user was promised an answer), counted and logged.
func TestAsyncUndeliverableHandsOff(t *testing.T) {
	api := newFakeKommunicate(t, 400)
	model := newSlowModel(t, func(last string, n int) string { return llmtest.Contract("never seen", 0.9) })
	p := startProcess(t, asyncConfig(t, api.URL, "memory://"), env(map[string]string{"OPENAI_BASE_URL": model.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	defer func() { p.cancel(); <-p.errc }()
	post(t, p.base, `{"botId":"bot","key":"1","groupId":22,"message":"slow"}`)
	close(model.release)
	got := <-api.got // the handoff, after the refused answer
	md, _ := got.Body["metadata"].(map[string]any)
	if got.Body["message"] != "Let me connect you with a teammate." || md["KM_ASSIGN_TO"] != "" {
		t.Errorf("after the failed delivery: %v", got.Body)
	}
	p.stderr.waitFor(t, "handed off after a failed delivery", 0)
	m := scrape(t, p.base)
	for _, want := range []string{`kommbridge_deliveries_total{result="failed"} 1`, `kommbridge_handoffs_total{reason="delivery_failed"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
