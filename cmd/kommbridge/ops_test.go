package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge/llm/llmtest"
)

func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Metrics after a scripted run, asserted by name and value.
func TestMetrics(t *testing.T) {
	fake := llmtest.New(t)
	fake.Enqueue(
		llmtest.Reply{Status: 500}, // retried
		llmtest.Reply{Content: llmtest.Contract("Shipped.", 0.9), FinishReason: "length"}, // cut at max_tokens
		llmtest.Reply{Content: "plain text"},                                              // a contract violation
		llmtest.Reply{Content: llmtest.Contract("Not sure.", 0.1)},                        // low confidence
	)
	path := writeConfig(t, `
log: {level: error}
limits: {conversation: {rate: 0.001, burst: 3}}
bots:
  - id: shop
  - id: "*"
    handoff: {phrases: ["real person"]}
`)
	base, stop := startRun(t, path, env(map[string]string{"OPENAI_BASE_URL": fake.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	defer stop()
	post(t, base, `{"botId":"b","key":"1","groupId":1,"message":"where?"}`)
	post(t, base, `{"botId":"b","key":"1","groupId":1,"message":"where?"}`) // duplicate
	post(t, base, `{"botId":"b","key":"2","groupId":1,"message":"and?"}`)
	post(t, base, `{"botId":"b","key":"3","groupId":1,"message":"sure?"}`)
	post(t, base, `{"botId":"b","key":"4","groupId":1,"message":"hello"}`) // over the limit
	post(t, base, `{"botId":"b","key":"5","groupId":2,"message":"a real person"}`)
	http.DefaultClient.Do(webhook(context.Background(), base, strings.NewReader(`{"botId":"b"}`))) // 400
	post(t, base, `{"botId":"shop","groupId":3,"eventName":"x-made-up","message":""}`)             // labels from the config only

	got := scrape(t, base)
	for _, want := range []string{
		`kommbridge_webhooks_total{event="message",status="200"} 6`,
		`kommbridge_webhooks_total{event="invalid",status="400"} 1`,
		`kommbridge_model_retries_total{endpoint="127.0.0.1`,
		`kommbridge_handoffs_total{reason="low_confidence"} 1`,
		`kommbridge_handoffs_total{reason="user_request"} 1`,
		`kommbridge_rate_limited_total 1`,
		`kommbridge_deduplicated_total 1`,
		`kommbridge_reply_contract_violations_total{format="json_schema",violation="not_json"} 1`,
		`kommbridge_tokens_total{bot="*",direction="in"} 30`, // the "*" bot answered botId b
		`kommbridge_tokens_total{bot="*",direction="out"} 15`,
		`kommbridge_tokens_total{bot="shop",direction="in"} 0`,
		`kommbridge_webhooks_total{event="other",status="200"} 1`,
		`kommbridge_model_errors_total{endpoint="127.0.0.1`,
		`kind="model unavailable"} 1`,
		`kind="malformed response"} 0`,
		`kommbridge_handoffs_total{reason="timeout"} 0`,
		`kommbridge_webhook_duration_seconds_count{outcome="busy"} 0`,
		`kommbridge_build_info{commit=`,
		`kommbridge_finish_reasons_total{reason="length"} 1`,
		`kommbridge_finish_reasons_total{reason="content_filter"} 0`,
		`kommbridge_breaker_open{endpoint="127.0.0.1`,
		`kommbridge_webhook_duration_seconds_count{outcome="answered"} 2`,
		`kommbridge_model_request_duration_seconds_count{endpoint="127.0.0.1`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, leaked := range []string{`bot="b"`, `event="x-made-up"`, `kind="other"`} {
		if strings.Contains(got, leaked) {
			t.Errorf("metrics have a label the configuration does not name: %s", leaked)
		}
	}
	if t.Failed() {
		t.Log(got)
	}
}

// A valid change is applied and an invalid one rejected, while webhooks
// keep being answered.
func TestHotReload(t *testing.T) {
	fake := llmtest.New(t)
	path := writeConfig(t, "log: {level: info}\nbots:\n  - id: \"*\"\n    welcome: {text: \"Hello v1\"}\n")
	p := startProcess(t, path, env(map[string]string{"OPENAI_BASE_URL": fake.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	defer func() { p.cancel(); <-p.errc }()
	welcome := func() string {
		return post(t, p.base, `{"botId":"b","groupId":1,"eventName":"WELCOME","message":""}`)
	}
	if got := welcome(); got != `[{"message":"Hello v1"}]` {
		t.Fatalf("before: %s", got)
	}

	// Traffic flows through every reload.
	stopTraffic := make(chan struct{})
	var wg sync.WaitGroup
	var served, failed atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stopTraffic:
				return
			default:
			}
			resp, err := http.DefaultClient.Do(webhook(context.Background(), p.base, strings.NewReader(fmt.Sprintf(`{"botId":"b","groupId":%d,"message":"hi"}`, 100+i))))
			if err != nil || resp.StatusCode != 200 {
				failed.Add(1)
			} else {
				served.Add(1)
			}
			if resp != nil {
				resp.Body.Close()
			}
		}
	}()
	seen := 0
	waitFor := func(text string) { seen = p.stderr.waitFor(t, text, seen) }

	if err := os.WriteFile(path, []byte("log: {level: info}\nbots:\n  - id: \"*\"\n    welcome: {text: \"Hello v2\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(`"msg":"config reloaded"`)
	if got := welcome(); got != `[{"message":"Hello v2"}]` {
		t.Errorf("after a valid change: %s", got)
	}

	if err := os.WriteFile(path, []byte("log: {level: info}\nbots:\n  - id: \"*\"\n    welcome: {text: \"Hello {{.Broken\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(`config reload rejected`)
	if got := welcome(); got != `[{"message":"Hello v2"}]` {
		t.Errorf("after an invalid change: %s", got)
	}
	close(stopTraffic)
	wg.Wait()
	if failed.Load() != 0 || served.Load() == 0 {
		t.Errorf("during reloads: %d served, %d failed", served.Load(), failed.Load())
	}
	m := scrape(t, p.base)
	for _, want := range []string{`kommbridge_config_reloads_total{result="ok"}`, `kommbridge_config_reloads_total{result="rejected"}`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A custom event mapped to a prompt is answered by the model.
func TestEventPrompt(t *testing.T) {
	fake := llmtest.New(t)
	fake.Enqueue(llmtest.Reply{Content: llmtest.Contract("Pro costs 49 EUR a month. Want a demo?", 0.9)})
	path := writeConfig(t, "log: {level: error}\nbots:\n  - id: \"*\"\n    events: {PRICING_PAGE: \"The user opened the pricing page of plan {{.Context.plan}}. Greet them and offer help.\"}\n")
	base, stop := startRun(t, path, env(map[string]string{"OPENAI_BASE_URL": fake.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	defer stop()
	got := post(t, base, `{"botId":"b","groupId":1,"eventName":"PRICING_PAGE","message":"","metadata":{"KM_CHAT_CONTEXT":{"plan":"Pro"}}}`)
	if got != `[{"message":"Pro costs 49 EUR a month. Want a demo?"}]` {
		t.Errorf("answer %s", got)
	}
	if u := fake.Last(t).Chat.Messages[1].Content; u != "The user opened the pricing page of plan Pro. Greet them and offer help." {
		t.Errorf("model got %q", u)
	}
	if got := post(t, base, `{"botId":"b","groupId":1,"eventName":"OTHER_EVENT","message":""}`); got != "[]" {
		t.Errorf("unmapped event: %s", got)
	}
	// The documented way to trigger an event: a hidden "Event: NAME"
	// message with KM_TRIGGER_EVENT, with or without eventName. Its text
	// never reaches the model as the user's words.
	hidden := func(name, eventName string) string {
		ev := ""
		if eventName != "" {
			ev = fmt.Sprintf(`"eventName":%q,`, eventName)
		}
		return fmt.Sprintf(`{"botId":"b","groupId":2,%s"message":"Event: %s","contentType":10,"metadata":{"category":"HIDDEN","KM_TRIGGER_EVENT":%q,"KM_CHAT_CONTEXT":{"plan":"Team"}}}`, ev, name, name)
	}
	for _, body := range []string{hidden("PRICING_PAGE", ""), hidden("PRICING_PAGE", "PRICING_PAGE")} {
		fake.Enqueue(llmtest.Reply{Content: llmtest.Contract("Team is 99 EUR.", 0.9)})
		if got := post(t, base, body); got != `[{"message":"Team is 99 EUR."}]` {
			t.Errorf("triggered event: %s", got)
		}
		if u := fake.Last(t).Chat.Messages[len(fake.Last(t).Chat.Messages)-1].Content; u != "The user opened the pricing page of plan Team. Greet them and offer help." {
			t.Errorf("model got %q", u)
		}
	}
	calls := fake.Calls()
	if got := post(t, base, hidden("SOMETHING_ELSE", "")); got != "[]" || fake.Calls() != calls {
		t.Errorf("an unmapped triggered event: %s, %d model calls", got, fake.Calls()-calls)
	}
	if got := post(t, base, hidden("WELCOME", "")); got != "[]" { // this bot has no welcome text
		t.Errorf("a triggered WELCOME: %s", got)
	}
	if fake.Calls() != calls {
		t.Error("a triggered WELCOME called the model")
	}
}

// A reply budget raised by a reload is in force for the next webhook, all
// the way to the caller (the server's write timeout does not cut it), and
// a reload names the keys it cannot apply.
func TestReloadRaisesTheBudget(t *testing.T) {
	fake := llmtest.New(t)
	fake.Default(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Delay: 6500 * time.Millisecond, Content: llmtest.Contract("Worth the wait.", 0.9)}
	})
	path := writeConfig(t, "server: {reply_budget: 1s}\nlog: {level: info}\n")
	p := startProcess(t, path, env(map[string]string{"OPENAI_BASE_URL": fake.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	defer func() { p.cancel(); <-p.errc }()
	if err := os.WriteFile(path, []byte("server: {reply_budget: 10s}\nllm: {max_retries: 1}\nlog: {level: info}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := p.stderr.waitFor(t, `"keys":["llm.max_retries"]`, 0)
	p.stderr.waitFor(t, `"msg":"config reloaded"`, seen)
	if got := post(t, p.base, `{"botId":"b","groupId":1,"message":"hi"}`); got != `[{"message":"Worth the wait."}]` {
		t.Errorf("a 6.5 s answer under a 10 s budget set by reload: %s", got)
	}
}
