package bridge

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/store/memory"
)

// queueing is a memory store that says when a message joined a queue.
type queueing struct {
	*memory.Store
	queued chan string
}

func (q *queueing) Queue(ctx context.Context, conv, key, text string) error {
	err := q.Store.Queue(ctx, conv, key, text)
	q.queued <- key
	return err
}

// Messages that arrive while their conversation is being answered join
// one model call: the newest of them answers all, with the user's words
// in order, and the others' webhooks get no message of their own; the
// history holds every message once, then the one answer. Nobody is
// handed off.
func TestQuickMessagesJoin(t *testing.T) {
	st := &queueing{Store: newStore(), queued: make(chan string, 10)}
	release, calling := make(chan struct{}), make(chan struct{}, 1)
	var mu sync.Mutex
	var requests [][]llm.Message
	m := &scripted{}
	m.answer = func(ctx context.Context) (llm.Response, error) {
		mu.Lock()
		requests = append(requests, m.last.Messages)
		first := len(requests) == 1
		mu.Unlock()
		if first {
			calling <- struct{}{}
			<-release
			return says("First answered.")(ctx)
		}
		return says("Both answered.")(ctx)
	}
	b := testBridge(t, m, Deps{Store: st})
	ctx := context.Background()
	results := make(map[string]Result)
	var wg sync.WaitGroup
	send := func(key, text string) {
		wg.Go(func() {
			r, _ := b.Handle(ctx, message(key, text))
			mu.Lock()
			results[key] = r
			mu.Unlock()
		})
		<-st.queued
	}
	send("a", "Where is my order?")
	<-calling
	send("b", "It's order 1234.")
	send("c", "And can I change the address?")
	close(release)
	wg.Wait()

	if r := results["a"]; r.Outcome != kommbridge.OutcomeAnswered || r.Messages[0].Text != "First answered." {
		t.Errorf("a: %q %+v", r.Outcome, r.Messages)
	}
	if r := results["b"]; r.Outcome != kommbridge.OutcomeJoined || len(r.Messages) != 0 {
		t.Errorf("b: %q %+v, want joined and no message", r.Outcome, r.Messages)
	}
	if r := results["c"]; r.Outcome != kommbridge.OutcomeAnswered || r.Messages[0].Text != "Both answered." {
		t.Errorf("c: %q %+v", r.Outcome, r.Messages)
	}
	if len(requests) != 2 {
		t.Fatalf("%d model calls, want 2", len(requests))
	}
	var asked []string
	for _, msg := range requests[1][1:] {
		asked = append(asked, msg.Role+": "+msg.Content)
	}
	want := "[user: Where is my order? assistant: First answered. user: It's order 1234. user: And can I change the address?]"
	if fmt.Sprint(asked) != want {
		t.Errorf("the joined call asked %v\nwant %s", asked, want)
	}
	h, _ := st.History(ctx, "bot/c1")
	var kept []string
	for _, turn := range h {
		kept = append(kept, turn.Role+": "+turn.Text)
	}
	if want := "[user: Where is my order? assistant: First answered. user: It's order 1234. user: And can I change the address? assistant: Both answered.]"; fmt.Sprint(kept) != want {
		t.Errorf("history %v\nwant %s", kept, want)
	}
	// A retry of b's key gets its (empty) answer again, without the model.
	if r, _ := b.Handle(ctx, message("b", "It's order 1234.")); r.Outcome != kommbridge.OutcomeDuplicate || len(r.Messages) != 0 || m.calls.Load() != 2 {
		t.Errorf("retry of b: %q %+v after %d calls", r.Outcome, r.Messages, m.calls.Load())
	}
}

// Nothing that comes in is unbounded: a 1 MB message reaches the model,
// and the history, cut to limits.max_message_chars, and 9,000 attachments
// (most past media.max_attachments) become a short request; both are
// reported for the metrics.
func TestIncomingBounded(t *testing.T) {
	m := &scripted{answer: says("Got it.")}
	st := newStore()
	b := testBridge(t, m, Deps{Store: st})
	ctx := context.Background()
	huge := strings.Repeat("paste ", 1<<20/6)
	r, _ := b.Handle(ctx, message("k1", huge))
	user := m.last.Messages[len(m.last.Messages)-1].Content
	if n := utf8.RuneCountInString(user); n > 8100 || !strings.Contains(user, "[cut: the message was longer than 8000 characters]") || fmt.Sprint(r.Cut) != "[message]" {
		t.Errorf("the model read %d characters; cut %v", n, r.Cut)
	}
	h, _ := st.History(ctx, "bot/c1")
	if len(h) == 0 || len(h[0].Text) > 8100 {
		t.Errorf("history kept %d bytes of the message", len(h[0].Text))
	}
	atts := make([]kommbridge.Attachment, 9000)
	for i := range atts {
		atts[i] = kommbridge.Attachment{Type: "application/zip", Name: fmt.Sprintf("f%d.zip", i), URL: "https://example.com/f.zip"}
	}
	ev := message("k2", "")
	ev.Name, ev.ConversationID, ev.Attachments = kommbridge.EventMedia, "c2", atts
	r, _ = b.Handle(ctx, ev)
	size := 0
	for _, msg := range m.last.Messages[1:] {
		size += len(msg.Content)
		for _, p := range msg.Parts {
			size += len(p.Text)
		}
	}
	if size > 20_000 || fmt.Sprint(r.Cut) != "[attachments]" {
		t.Errorf("9,000 attachments made a %d-byte request; cut %v", size, r.Cut)
	}
}
