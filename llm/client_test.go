package llm_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/llm/llmtest"
)

func newClient(t *testing.T, retries int, urls ...string) *llm.Client {
	t.Helper()
	var eps []llm.Endpoint
	for _, u := range urls {
		eps = append(eps, llm.Endpoint{BaseURL: u, APIKey: "k", APIType: "openai", Model: "m"})
	}
	c, err := llm.New(llm.Config{Endpoints: eps, MaxRetries: retries, BreakerFailures: 2, BreakerCooldown: time.Hour}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var hello = llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}

func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		replies   []llmtest.Reply
		wantText  string
		wantErr   error
		wantCalls int
	}{
		{"500 then 200", []llmtest.Reply{{Status: 500}, {Content: "ok"}}, "ok", nil, 2},
		{"429 with short Retry-After", []llmtest.Reply{{Status: 429, RetryAfter: "0.01"}, {Content: "ok"}}, "ok", nil, 2},
		{"connection-level garbage then 200", []llmtest.Reply{{Body: "{\"id\": "}, {Content: "ok"}}, "ok", nil, 2},
		{"400 is not retried", []llmtest.Reply{{Status: 400}, {Content: "never"}}, "", llm.ErrRejected, 1},
		{"401 is not retried", []llmtest.Reply{{Status: 401}}, "", llm.ErrRejected, 1},
		{"404 is not retried", []llmtest.Reply{{Status: 404}}, "", llm.ErrRejected, 1},
		{"503 until retries run out", []llmtest.Reply{{Status: 503}, {Status: 503}, {Status: 503}}, "", llm.ErrUnavailable, 3},
		{"no choices", []llmtest.Reply{{Body: `{"id":"x","choices":[]}`}, {Body: `{"id":"x","choices":[]}`}, {Body: `{"id":"x","choices":[]}`}}, "", llm.ErrMalformed, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := llmtest.New(t)
			fake.Enqueue(tt.replies...)
			c := newClient(t, 2, fake.URL())
			resp, err := c.Complete(within(t, 10*time.Second), hello)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err %v, want %v", err, tt.wantErr)
				}
			} else if err != nil || resp.Content != tt.wantText {
				t.Fatalf("got %q, %v; want %q", resp.Content, err, tt.wantText)
			}
			if got := fake.Calls(); got != tt.wantCalls {
				t.Errorf("calls %d, want %d", got, tt.wantCalls)
			}
		})
	}
}

// A Retry-After longer than the time left is not waited for: the call
// fails at once, well inside the deadline.
func TestRetryAfterBeyondDeadline(t *testing.T) {
	fake := llmtest.New(t)
	fake.Enqueue(llmtest.Reply{Status: 429, RetryAfter: "120"}, llmtest.Reply{Content: "too late"})
	c := newClient(t, 2, fake.URL())
	ctx := within(t, 10*time.Second)
	_, err := c.Complete(ctx, hello)
	if !errors.Is(err, llm.ErrUnavailable) {
		t.Fatalf("err %v, want ErrUnavailable", err)
	}
	if ctx.Err() != nil {
		t.Error("Complete waited out the deadline instead of giving up")
	}
	if fake.Calls() != 1 {
		t.Errorf("calls %d, want 1", fake.Calls())
	}
}

func TestHangEndsAtDeadline(t *testing.T) {
	fake := llmtest.New(t)
	fake.Enqueue(llmtest.Reply{Hang: true})
	c := newClient(t, 2, fake.URL())
	_, err := c.Complete(within(t, 200*time.Millisecond), hello)
	if !errors.Is(err, llm.ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
}

func TestFallback(t *testing.T) {
	dead, live := llmtest.New(t), llmtest.New(t)
	dead.Default(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Status: 502} })
	live.Enqueue(llmtest.Reply{Content: "from the fallback"})
	c := newClient(t, 1, dead.URL(), live.URL())
	resp, err := c.Complete(within(t, 10*time.Second), hello)
	if err != nil || resp.Content != "from the fallback" {
		t.Fatalf("got %q, %v", resp.Content, err)
	}
	if resp.Attempts != 3 || dead.Calls() != 2 || live.Calls() != 1 {
		t.Errorf("attempts %d, dead calls %d, live calls %d; want 3, 2, 1", resp.Attempts, dead.Calls(), live.Calls())
	}
	if got := live.Last(t).Chat.Model; got != "m" {
		t.Errorf("fallback model %q, want its own model m", got)
	}
}

// After two failed calls (of two tries each) the breaker skips the dead endpoint, so later
// requests go straight to the fallback.
func TestBreakerSkipsDeadEndpoint(t *testing.T) {
	dead, live := llmtest.New(t), llmtest.New(t)
	dead.Default(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Status: 500} })
	c := newClient(t, 1, dead.URL(), live.URL())
	for i := 0; i < 3; i++ {
		if _, err := c.Complete(within(t, 10*time.Second), hello); err != nil {
			t.Fatal(err)
		}
	}
	if dead.Calls() != 4 || live.Calls() != 3 {
		t.Errorf("dead calls %d, live calls %d; want 4 (2 calls of 2 tries) and 3", dead.Calls(), live.Calls())
	}
	if !c.Open(0) || c.Open(1) {
		t.Errorf("breaker open: primary %v, fallback %v; want true, false", c.Open(0), c.Open(1))
	}
}

func TestRequestShape(t *testing.T) {
	fake := llmtest.New(t)
	fake.RequireKey("k")
	c := newClient(t, 0, fake.URL())
	temp := float32(0.3)
	_, err := c.Complete(within(t, 5*time.Second), llm.Request{
		Model:       "gpt-4o",
		Messages:    []llm.Message{{Role: llm.RoleSystem, Content: "be brief"}, {Role: llm.RoleUser, Parts: []llm.Part{{Text: "look"}, {ImageURL: "https://x/y.png", Detail: "low"}}}},
		Temperature: &temp,
		MaxTokens:   100,
		Format:      llm.ResponseJSONObject,
		Tools:       []llm.Tool{{Name: "handoff_to_human", Parameters: []byte(`{"type":"object"}`)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := fake.Last(t).Chat
	//lint:ignore SA1019 the request must carry max_tokens
	if r.Model != "gpt-4o" || r.MaxTokens != 100 || r.Temperature != 0.3 || r.ResponseFormat == nil || r.ResponseFormat.Type != "json_object" {
		t.Errorf("request %+v", r)
	}
	if len(r.Tools) != 1 || r.Tools[0].Function.Name != "handoff_to_human" {
		t.Errorf("tools %+v", r.Tools)
	}
	parts := r.Messages[1].MultiContent
	if len(parts) != 2 || parts[1].ImageURL == nil || parts[1].ImageURL.URL != "https://x/y.png" || parts[1].ImageURL.Detail != "low" {
		t.Errorf("user parts %+v", parts)
	}
}

func TestAzure(t *testing.T) {
	fake := llmtest.New(t)
	c, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{{BaseURL: fake.URL(), APIKey: "az", APIType: "azure", APIVersion: "2024-10-21", Model: "my-deployment"}}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Complete(within(t, 5*time.Second), hello); err != nil {
		t.Fatal(err)
	}
	r := fake.Last(t)
	if r.Path != "/v1/openai/deployments/my-deployment/chat/completions" || r.Header.Get("Api-Key") != "az" {
		t.Errorf("path %s, api-key %q", r.Path, r.Header.Get("Api-Key"))
	}
}

// With one slot, a second call waits only while its deadline allows.
func TestConcurrencyBound(t *testing.T) {
	fake := llmtest.New(t)
	arrived := make(chan struct{})
	fake.Default(func(llmtest.Request) llmtest.Reply {
		close(arrived)
		return llmtest.Reply{Hang: true}
	})
	c, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{{BaseURL: fake.URL(), APIType: "openai", Model: "m"}}, MaxConcurrency: 1}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	first, cancelFirst := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Complete(first, hello)
	}()
	<-arrived // the first call holds the only slot
	_, err = c.Complete(within(t, 100*time.Millisecond), hello)
	if !errors.Is(err, llm.ErrBusy) || errors.Is(err, llm.ErrTimeout) {
		t.Errorf("second call: %v, want ErrBusy while the slot is held", err)
	}
	if fake.Calls() != 1 {
		t.Errorf("calls %d, want 1", fake.Calls())
	}
	cancelFirst()
	<-done
}

// The breaker opens after repeated failed calls, skips the endpoint while
// open, lets one probe through after the cool-down, and closes on its success.
func TestBreakerOpensAndCloses(t *testing.T) {
	primary, fallback := llmtest.New(t), llmtest.New(t)
	primary.Enqueue(llmtest.Reply{Status: 500}, llmtest.Reply{Status: 500}, llmtest.Reply{Content: "primary is back"})
	fallback.Default(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Content: "fallback"} })
	c, err := llm.New(llm.Config{
		Endpoints: []llm.Endpoint{
			{BaseURL: primary.URL(), APIType: "openai", Model: "m"},
			{BaseURL: fallback.URL(), APIType: "openai", Model: "m"},
		},
		BreakerFailures: 2, BreakerCooldown: 100 * time.Millisecond,
	}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	answer := func() string {
		resp, err := c.Complete(within(t, 5*time.Second), hello)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Content
	}
	answer() // primary fails once, fallback answers
	answer() // primary fails twice: open
	if !c.Open(0) {
		t.Fatal("breaker not open after 2 failed calls")
	}
	if got := answer(); got != "fallback" || primary.Calls() != 2 {
		t.Errorf("while open: %q, primary calls %d (want it skipped)", got, primary.Calls())
	}
	waitFor(t, "the cool-down", func() bool { return !c.Open(0) })
	if got := answer(); got != "primary is back" {
		t.Errorf("after the cool-down: %q, want the primary probed again", got)
	}
	if c.Open(0) {
		t.Error("breaker still open after a success")
	}
}

// waitFor polls cond until it holds, for conditions that only time brings
// (a breaker's cool-down); it fails the test after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 5s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A call counts once however many times it was retried: two messages that
// each got broken bodies on every try are two failures, not six.
func TestBreakerCountsCallsNotTries(t *testing.T) {
	fake := llmtest.New(t)
	fake.Default(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Body: `{"id":"x","choices":[]}`} })
	c, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{{BaseURL: fake.URL(), APIType: "openai", Model: "m"}},
		MaxRetries: 2, BreakerFailures: 3, BreakerCooldown: time.Hour}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := c.Complete(within(t, 10*time.Second), hello); !errors.Is(err, llm.ErrMalformed) {
			t.Fatalf("call %d: %v, want ErrMalformed", i, err)
		}
	}
	if fake.Calls() != 6 {
		t.Errorf("calls %d, want 6 (2 messages x 3 tries)", fake.Calls())
	}
	if c.Open(0) {
		t.Error("breaker open after 2 failed calls of a threshold of 3")
	}
	c.Complete(within(t, 10*time.Second), hello)
	if !c.Open(0) {
		t.Error("breaker still closed after 3 failed calls")
	}
}

// Failures that say nothing of the endpoint never open the breaker: a
// caller that goes away, a deadline already passed, a refused request.
func TestBreakerIgnoresCallerFaults(t *testing.T) {
	fake := llmtest.New(t)
	arrived := make(chan struct{}, 10)
	fake.Default(func(r llmtest.Request) llmtest.Reply {
		arrived <- struct{}{}
		return llmtest.Reply{Hang: true}
	})
	c, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{{BaseURL: fake.URL(), APIType: "openai", Model: "m"}},
		BreakerFailures: 1, BreakerCooldown: time.Hour}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-arrived; cancel() }()
		if _, err := c.Complete(ctx, hello); !errors.Is(err, llm.ErrTimeout) {
			t.Fatalf("cancelled call: %v", err)
		}
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	if _, err := c.Complete(expired, hello); !errors.Is(err, llm.ErrNoTime) {
		t.Errorf("call after the deadline: %v, want ErrNoTime", err)
	}
	// A hang cut by a short deadline is not the endpoint's fault either.
	if _, err := c.Complete(within(t, 200*time.Millisecond), hello); !errors.Is(err, llm.ErrTimeout) {
		t.Errorf("short call: %v, want ErrTimeout", err)
	}
	if fake.Calls() != 4 {
		t.Errorf("calls %d, want 4 (none after the deadline)", fake.Calls())
	}
	if c.Open(0) {
		t.Error("breaker opened by callers that went away")
	}
	rejecting := llmtest.New(t)
	rejecting.Default(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Status: 400} })
	c = newClient(t, 0, rejecting.URL())
	for i := 0; i < 3; i++ {
		c.Complete(within(t, 5*time.Second), hello)
	}
	if c.Open(0) {
		t.Error("breaker opened by 400s")
	}
}

// A success closes the breaker even when its call began before it opened.
func TestBreakerClosesOnLateSuccess(t *testing.T) {
	fake := llmtest.New(t)
	slow := make(chan struct{})
	fake.Default(func(r llmtest.Request) llmtest.Reply {
		if r.Chat.Messages[0].Content == "slow" {
			close(slow)
			return llmtest.Reply{Delay: 300 * time.Millisecond, Content: "late but fine"}
		}
		return llmtest.Reply{Status: 500}
	})
	c := newClient(t, 0, fake.URL())
	done := make(chan error)
	go func() {
		_, err := c.Complete(within(t, 5*time.Second), llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "slow"}}})
		done <- err
	}()
	<-slow
	c.Complete(within(t, 5*time.Second), hello)
	c.Complete(within(t, 5*time.Second), hello)
	if !c.Open(0) {
		t.Fatal("breaker not open after 2 failed calls")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.Open(0) {
		t.Error("breaker still open after a success")
	}
}

// After the cool-down one probe goes through; others skip the endpoint
// until it answers.
func TestBreakerHalfOpenLetsOneProbe(t *testing.T) {
	primary, fallback := llmtest.New(t), llmtest.New(t)
	probing, release := make(chan struct{}), make(chan struct{})
	var fail atomic.Bool
	fail.Store(true)
	primary.Default(func(llmtest.Request) llmtest.Reply {
		if fail.Load() {
			return llmtest.Reply{Status: 503}
		}
		close(probing)
		<-release
		return llmtest.Reply{Content: "primary"}
	})
	fallback.Default(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Content: "fallback"} })
	c, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{
		{BaseURL: primary.URL(), APIType: "openai", Model: "m"}, {BaseURL: fallback.URL(), APIType: "openai", Model: "m"},
	}, BreakerFailures: 1, BreakerCooldown: 50 * time.Millisecond}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	c.Complete(within(t, 5*time.Second), hello)
	if !c.Open(0) {
		t.Fatal("breaker not open")
	}
	fail.Store(false)
	waitFor(t, "the cool-down", func() bool { return !c.Open(0) })
	probe := make(chan string)
	go func() {
		resp, _ := c.Complete(within(t, 5*time.Second), hello)
		probe <- resp.Content
	}()
	<-probing
	resp, err := c.Complete(within(t, 5*time.Second), hello)
	if err != nil || resp.Content != "fallback" {
		t.Errorf("during the probe: %q, %v; want the fallback", resp.Content, err)
	}
	close(release)
	if got := <-probe; got != "primary" {
		t.Errorf("probe got %q", got)
	}
	if primary.Calls() != 2 {
		t.Errorf("primary calls %d, want 2 (the failure and one probe)", primary.Calls())
	}
}

func TestMaxCompletionTokens(t *testing.T) {
	fake := llmtest.New(t)
	c, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{{BaseURL: fake.URL(), APIType: "openai", Model: "o3-mini", MaxCompletionTokens: true}}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Complete(within(t, 5*time.Second), llm.Request{Messages: hello.Messages, MaxTokens: 300}); err != nil {
		t.Fatal(err)
	}
	body := string(fake.Last(t).Body)
	if !strings.Contains(body, `"max_completion_tokens":300`) || strings.Contains(body, `"max_tokens"`) {
		t.Errorf("body %s", body)
	}
}

// With every endpoint's breaker open the call is made anyway: a breaker
// picks between endpoints and never refuses the last chance, so the first
// message after the model recovers is answered, and closes the breaker.
func TestBreakerNeverRefusesTheLastChance(t *testing.T) {
	fake := llmtest.New(t)
	fake.Enqueue(llmtest.Reply{Status: 500}, llmtest.Reply{Status: 500})
	c := newClient(t, 0, fake.URL())
	c.Complete(within(t, 5*time.Second), hello)
	c.Complete(within(t, 5*time.Second), hello)
	if !c.Open(0) {
		t.Fatal("breaker not open after 2 failed calls")
	}
	resp, err := c.Complete(within(t, 5*time.Second), hello)
	if err != nil || resp.Content != "ok" {
		t.Fatalf("with the only endpoint open: %q, %v", resp.Content, err)
	}
	if c.Open(0) {
		t.Error("breaker still open after a success")
	}
}

// A call whose slot freed so late that the model had too little time is
// overload (ErrBusy), not a model failure.
func TestLateSlotIsBusy(t *testing.T) {
	fake := llmtest.New(t)
	first := true
	var mu sync.Mutex
	fake.Default(func(llmtest.Request) llmtest.Reply {
		mu.Lock()
		defer mu.Unlock()
		if first {
			first = false
			return llmtest.Reply{Delay: 400 * time.Millisecond, Content: "first"}
		}
		return llmtest.Reply{Delay: time.Second, Content: "too slow for what is left"}
	})
	c, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{{BaseURL: fake.URL(), APIType: "openai", Model: "m"}}, MaxConcurrency: 1}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { _, err := c.Complete(within(t, 5*time.Second), hello); done <- err }()
	for fake.Calls() == 0 {
		time.Sleep(time.Millisecond)
	}
	_, err = c.Complete(within(t, 600*time.Millisecond), hello)
	if !errors.Is(err, llm.ErrBusy) || errors.Is(err, llm.ErrTimeout) {
		t.Errorf("late slot: %v, want ErrBusy", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A 429's Retry-After travels on the error value, with the endpoint's
// message, and paces the retry.
func TestRetryAfterOnTheError(t *testing.T) {
	fake := llmtest.New(t)
	fake.Enqueue(llmtest.Reply{Status: 429, RetryAfter: "120"})
	c := newClient(t, 0, fake.URL())
	_, err := c.Complete(within(t, 5*time.Second), hello)
	var e *llm.Error
	if !errors.As(err, &e) || e.Status != 429 || e.RetryAfter != 120*time.Second || !strings.Contains(e.Error(), "scripted 429") || !errors.Is(err, llm.ErrUnavailable) {
		t.Fatalf("error %#v", err)
	}
	fake.Enqueue(llmtest.Reply{Status: 503, RetryAfter: "0.3"}, llmtest.Reply{Content: "after the pause"})
	c = newClient(t, 1, fake.URL())
	start := time.Now()
	resp, err := c.Complete(within(t, 5*time.Second), hello)
	if err != nil || resp.Content != "after the pause" {
		t.Fatalf("%q %v", resp.Content, err)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("retried after %v, before the 0.3 s the endpoint asked for", took)
	}
}
