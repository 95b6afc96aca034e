package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"

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
