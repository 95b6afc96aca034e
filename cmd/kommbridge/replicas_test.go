package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kommbridge/kommbridge/llm/llmtest"
	"github.com/kommbridge/kommbridge/store/redis/redistest"
)

func post(t *testing.T, base, body string) string {
	t.Helper()
	resp, err := http.DefaultClient.Do(webhook(context.Background(), base, strings.NewReader(body)))
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

// With Redis down the webhook still answers, from the model without
// stored history, and /readyz says "degraded" with a 200; when Redis is
// back, so is the history. With store.on_outage: error, the webhook gets
// the error policy and /readyz a 503.
func TestRedisDown(t *testing.T) {
	r := redistest.Start(t)
	if r.External {
		t.Skip("REDIS_URL names an external server; not killing it")
	}
	fake := llmtest.New(t)
	fake.Default(func(req llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Content: llmtest.Contract(fmt.Sprintf("fine (%d in history)", len(req.Chat.Messages)-2), 0.9)}
	})
	ready := func(base string) (int, string) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	for _, tt := range []struct {
		policy, whileDown string
		readyStatus       int
		readyText         string
	}{
		{"degrade", `[{"message":"fine (0 in history)"}]`, 200, `"status":"degraded"`},
		{"error", `[{"message":"Sorry, I'm having trouble answering right now."},{"message":"Let me connect you with a teammate.","metadata":{"KM_ASSIGN_TO":""}}]`, 503, "not ready: redis"},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			path := writeConfig(t, fmt.Sprintf("server: {reply_budget: 3s}\nstore: {url: %q, on_outage: %s}\nlog: {level: warn}\nbots:\n  - id: \"*\"\n", r.URL, tt.policy))
			p := startProcess(t, path, env(map[string]string{"OPENAI_BASE_URL": fake.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
			base := p.base
			defer func() {
				p.cancel()
				<-p.errc
				// Everything written is JSON, go-redis's own complaints included.
				for _, l := range strings.Split(strings.TrimSpace(p.stderr.text()), "\n") {
					if l != "" && !strings.HasPrefix(l, "{") {
						t.Errorf("a log line that is not JSON: %s", l)
					}
				}
			}()
			conv := fmt.Sprintf(`"groupId":"%s"`, tt.policy)
			post(t, base, `{"botId":"bot","key":"`+tt.policy+`0",`+conv+`,"message":"before"}`)
			post(t, base, `{"botId":"bot","key":"`+tt.policy+`0b",`+conv+`,"message":"before again"}`)

			r.Kill()
			if got := post(t, base, `{"botId":"bot","key":"`+tt.policy+`1",`+conv+`,"message":"hi"}`); got != tt.whileDown {
				t.Errorf("with Redis down: %s", got)
			}
			if code, text := ready(base); code != tt.readyStatus || !strings.Contains(text, tt.readyText) {
				t.Errorf("readyz with Redis down: %d %s", code, text)
			}

			r.Start(t)
			waitReady(t, base)
			// Ready again means answered from Redis again: its history, not
			// the stand-in's.
			if got := post(t, base, `{"botId":"bot","key":"`+tt.policy+`2",`+conv+`,"message":"hi"}`); got != `[{"message":"fine (4 in history)"}]` {
				t.Errorf("after Redis is back: %s", got)
			}
		})
	}
}

// waitReady polls /readyz until it says "ready" (Redis back and answering).
func waitReady(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(b), `"ready"`) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready 10s after Redis came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
