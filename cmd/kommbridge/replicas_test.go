package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kommbridge/kommbridge/llm/llmtest"
	"github.com/kommbridge/kommbridge/store/redis/redistest"
)

func post(t *testing.T, base, body string) string {
	t.Helper()
	resp, err := http.Post(base+"/webhook", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	return string(b)
}

// Two replicas on one Redis behave as one bot: a key delivered to both at
// once is answered once, identically; one conversation's messages
// alternated between them keep one ordered history; a stopped replica
// loses nothing the other needs.
func TestTwoReplicasShareRedis(t *testing.T) {
	r := redistest.Start(t)
	fake := llmtest.New(t)
	release := make(chan struct{})
	var once sync.Once
	arrived := make(chan struct{})
	fake.Default(func(req llmtest.Request) llmtest.Reply {
		last := req.Chat.Messages[len(req.Chat.Messages)-1].Content
		if last == "slow" {
			once.Do(func() { close(arrived) })
			<-release
		}
		return llmtest.Reply{Content: llmtest.Contract(fmt.Sprintf("re: %s (%d in history)", last, len(req.Chat.Messages)-2), 0.9)}
	})
	path := writeConfig(t, fmt.Sprintf("store: {url: %q}\nlog: {level: error}\nbots:\n  - id: \"*\"\n", r.URL))
	getenv := env(map[string]string{"OPENAI_BASE_URL": fake.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"})
	a, stopA := startRun(t, path, getenv)
	b, stopB := startRun(t, path, getenv)

	// The same key to both replicas at once.
	body := `{"botId":"bot","key":"k-shared","groupId":1,"message":"slow"}`
	var answers [2]string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); answers[0] = post(t, a, body) }()
	<-arrived
	wg.Add(1)
	go func() { defer wg.Done(); answers[1] = post(t, b, body) }()
	close(release)
	wg.Wait()
	if answers[0] != answers[1] || answers[0] != `[{"message":"re: slow (0 in history)"}]` {
		t.Errorf("answers differ or wrong:\n%s\n%s", answers[0], answers[1])
	}
	if n := fake.Calls(); n != 1 {
		t.Errorf("model called %d times for one key on two replicas", n)
	}

	// One conversation alternated between the replicas.
	post(t, a, `{"botId":"bot","key":"m1","groupId":2,"message":"one"}`)
	post(t, b, `{"botId":"bot","key":"m2","groupId":2,"message":"two"}`)
	if err := stopA(); err != nil {
		t.Fatal(err)
	}
	got := post(t, b, `{"botId":"bot","key":"m3","groupId":2,"message":"three"}`)
	if got != `[{"message":"re: three (4 in history)"}]` {
		t.Errorf("third message: %s", got)
	}
	var hist []string
	for _, m := range fake.Last(t).Chat.Messages[1:] {
		hist = append(hist, m.Content)
	}
	want := []string{"one", "re: one (0 in history)", "two", "re: two (2 in history)", "three"}
	if diff := cmp.Diff(want, hist); diff != "" {
		t.Errorf("history across replicas (-want +got):\n%s", diff)
	}
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
}

// With Redis down the webhook still answers with the error policy, and
// /readyz says why; when Redis is back, so is the bot.
func TestRedisDown(t *testing.T) {
	r := redistest.Start(t)
	if r.External {
		t.Skip("REDIS_URL names an external server; not killing it")
	}
	fake := llmtest.New(t)
	fake.Default(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Content: llmtest.Contract("fine", 0.9)} })
	path := writeConfig(t, fmt.Sprintf("server: {reply_budget: 3s}\nstore: {url: %q}\nlog: {level: error}\nbots:\n  - id: \"*\"\n", r.URL))
	base, stop := startRun(t, path, env(map[string]string{"OPENAI_BASE_URL": fake.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	defer stop()

	r.Kill()
	got := post(t, base, `{"botId":"bot","key":"x1","groupId":1,"message":"hi"}`)
	if got != `[{"message":"Sorry, I'm having trouble answering right now."},{"message":"Let me connect you with a teammate.","metadata":{"KM_ASSIGN_TO":""}}]` {
		t.Errorf("with Redis down: %s", got)
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), "not ready: redis") {
		t.Errorf("readyz with Redis down: %d %s", resp.StatusCode, b)
	}

	r.Start(t)
	if got := post(t, base, `{"botId":"bot","key":"x2","groupId":1,"message":"hi"}`); got != `[{"message":"fine"}]` {
		t.Errorf("after Redis is back: %s", got)
	}
}
