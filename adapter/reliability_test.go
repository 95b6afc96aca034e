package adapter_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// A repeated key gets the first answer byte for byte, and the model is
// called once.
func TestDuplicateKey(t *testing.T) {
	h := newHarness(t, "", "")
	h.model.Enqueue(llmtest.Reply{Content: llmtest.Contract("First answer.", 0.9, "More")}, llmtest.Reply{Content: llmtest.Contract("Second answer.", 0.9)})
	body := `{"botId":"b","key":"same-key","groupId":1,"message":"hi"}`
	first, again := h.postRaw(body), h.postRaw(body)
	if string(first) != string(again) {
		t.Errorf("first %s\nagain %s", first, again)
	}
	if h.model.Calls() != 1 {
		t.Errorf("model calls %d, want 1", h.model.Calls())
	}
}

// Duplicates arriving while the first is being answered wait for it.
func TestConcurrentDuplicates(t *testing.T) {
	h := newHarness(t, "", "")
	arrived := make(chan struct{})
	release := make(chan struct{})
	h.model.Default(func(llmtest.Request) llmtest.Reply {
		close(arrived)
		<-release
		return llmtest.Reply{Content: llmtest.Contract("Only once.", 0.9)}
	})
	body := `{"botId":"b","key":"dup","groupId":1,"message":"hi"}`
	answers := make([]string, 4)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); answers[0] = string(h.postRaw(body)) }()
	<-arrived // the first is with the model
	for i := 1; i < len(answers); i++ {
		wg.Add(1)
		go func() { defer wg.Done(); answers[i] = string(h.postRaw(body)) }()
	}
	close(release)
	wg.Wait()
	for i, a := range answers {
		if a != `[{"message":"Only once."}]` {
			t.Errorf("caller %d got %s", i, a)
		}
	}
	if h.model.Calls() != 1 {
		t.Errorf("model calls %d, want 1", h.model.Calls())
	}
}

// Two messages of one conversation at once are answered one after the
// other: the second request carries the first exchange.
func TestConversationOrder(t *testing.T) {
	h := newHarness(t, "", "")
	firstArrived := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	h.model.Default(func(r llmtest.Request) llmtest.Reply {
		last := r.Chat.Messages[len(r.Chat.Messages)-1].Content
		if last == "first" {
			once.Do(func() { close(firstArrived) })
			<-release
		}
		return llmtest.Reply{Content: llmtest.Contract("re: "+last, 0.9)}
	})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); h.post(`{"botId":"b","key":"1","groupId":9,"message":"first"}`) }()
	<-firstArrived
	go func() { defer wg.Done(); h.post(`{"botId":"b","key":"2","groupId":9,"message":"second"}`) }()
	close(release)
	wg.Wait()
	var got []string
	for _, m := range h.model.Last(t).Chat.Messages[1:] {
		got = append(got, m.Content)
	}
	if diff := cmp.Diff([]string{"first", "re: first", "second"}, got); diff != "" {
		t.Errorf("second request (-want +got):\n%s", diff)
	}
}

const errorPolicy = `[{"message":"Sorry, I'm having trouble answering right now."},{"message":"Let me connect you with a teammate.","metadata":{"KM_ASSIGN_TO":""}}]`

// A 429 asking to come back after the budget is not waited for: the user
// gets the error policy at once and the model is not called again.
func TestRateLimitedByProviderBeyondBudget(t *testing.T) {
	h := newHarness(t, "", "3s")
	h.model.Enqueue(llmtest.Reply{Status: 429, RetryAfter: "120"})
	client := &http.Client{Timeout: 2 * time.Second} // under the budget: waiting out Retry-After would trip it
	req, _ := http.NewRequest("POST", h.url+"/webhook", strings.NewReader(msg("hi")))
	req.Header.Set("X-Kommbridge-Token", token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("no answer before the client gave up: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != errorPolicy {
		t.Errorf("got %s", b)
	}
	if h.model.Calls() != 1 {
		t.Errorf("model calls %d, want 1", h.model.Calls())
	}
}
