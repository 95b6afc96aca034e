package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/media"
	"github.com/kommbridge/kommbridge/store/memory"
)

// scripted is a Model of plain values: each call gets answer's result.
type scripted struct {
	calls  atomic.Int32
	last   llm.Request
	answer func(ctx context.Context) (llm.Response, error)
}

func (m *scripted) Complete(ctx context.Context, r llm.Request) (llm.Response, error) {
	m.calls.Add(1)
	m.last = r
	return m.answer(ctx)
}

func says(text string) func(context.Context) (llm.Response, error) {
	return func(context.Context) (llm.Response, error) {
		return llm.Response{Content: `{"reply":"` + text + `","confidence":0.9}`, Attempts: 1}, nil
	}
}

func fails(kind error) func(context.Context) (llm.Response, error) {
	return func(context.Context) (llm.Response, error) {
		return llm.Response{}, &llm.Error{Kind: kind, Endpoint: "e", Err: errors.New("scripted")}
	}
}

// flaky is a store that fails every call while down, as Redis does when
// it is stopped; lost makes every lock report itself lost.
type flaky struct {
	*memory.Store
	down, lost atomic.Bool
	markReads  atomic.Int32 // HandoffAt calls
}

var errDown = errors.New("dial tcp: connection refused")

func (f *flaky) err() error {
	if f.down.Load() {
		return errDown
	}
	return nil
}

func (f *flaky) History(ctx context.Context, conv string) ([]kommbridge.Turn, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	return f.Store.History(ctx, conv)
}

func (f *flaky) Append(ctx context.Context, conv string, turns ...kommbridge.Turn) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Append(ctx, conv, turns...)
}

func (f *flaky) Reset(ctx context.Context, conv string, turns ...kommbridge.Turn) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Reset(ctx, conv, turns...)
}

func (f *flaky) Trim(ctx context.Context, conv string, keep int) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Trim(ctx, conv, keep)
}

func (f *flaky) MarkHandoff(ctx context.Context, conv string, at time.Time) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.MarkHandoff(ctx, conv, at)
}

func (f *flaky) HandoffAt(ctx context.Context, conv string) (time.Time, error) {
	f.markReads.Add(1)
	if err := f.err(); err != nil {
		return time.Time{}, err
	}
	return f.Store.HandoffAt(ctx, conv)
}

func (f *flaky) Lock(ctx context.Context, conv string) (kommbridge.Lock, error) {
	if err := f.err(); err != nil {
		return nil, err
	}
	l, err := f.Store.Lock(ctx, conv)
	if err != nil || !f.lost.Load() {
		return l, err
	}
	return lostLock{l}, nil
}

func (f *flaky) Claim(ctx context.Context, key string) ([]byte, bool, error) {
	if err := f.err(); err != nil {
		return nil, false, err
	}
	return f.Store.Claim(ctx, key)
}

func (f *flaky) Finish(ctx context.Context, key string, answer []byte) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Finish(ctx, key, answer)
}

type lostLock struct{ kommbridge.Lock }

func (lostLock) Lost() bool { return true }

func newStore() *memory.Store { return memory.New(memory.Options{HistoryTurns: 20}) }

// testBridge is a bridge on the default configuration (one "*" bot) with
// a 2 s reply budget.
func testBridge(t *testing.T, m Model, d Deps) *Bridge {
	t.Helper()
	cfg, err := config.Parse(nil, "test.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.ReplyBudget = config.Duration(2 * time.Second)
	d.Model = m
	if d.Store == nil {
		d.Store = newStore()
	}
	b, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func message(key, text string) kommbridge.Event {
	return kommbridge.Event{BotID: "bot", ConversationID: "c1", UserID: "u", Key: key, Text: text}
}

const (
	busyText  = "I'm answering a lot of people right now. Please send that again in a moment."
	errorText = "Sorry, I'm having trouble answering right now."
)

// Only the user, the model or a real model failure hands off: a model
// that could not be called in time gets the short busy message.
func TestWhoHandsOff(t *testing.T) {
	tests := []struct {
		name        string
		answer      func(context.Context) (llm.Response, error)
		wantOutcome string
		wantReason  string
		wantTexts   []string
		wantHistory int
	}{
		{"answer", says("Hello."), kommbridge.OutcomeAnswered, "", []string{"Hello."}, 2},
		{"every model slot taken", fails(llm.ErrBusy), kommbridge.OutcomeBusy, "", []string{busyText}, 0},
		{"no time left to call", fails(llm.ErrNoTime), kommbridge.OutcomeBusy, "", []string{busyText}, 0},
		{"model unavailable", fails(llm.ErrUnavailable), kommbridge.OutcomeHandoff, kommbridge.HandoffError, []string{errorText, "Let me connect you with a teammate."}, 1},
		{"model too slow", fails(llm.ErrTimeout), kommbridge.OutcomeHandoff, kommbridge.HandoffTimeout, []string{errorText, "Let me connect you with a teammate."}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newStore()
			b := testBridge(t, &scripted{answer: tt.answer}, Deps{Store: st})
			r, err := b.Handle(context.Background(), message("k", "hi"))
			if err != nil {
				t.Fatal(err)
			}
			if r.Outcome != tt.wantOutcome || r.HandoffReason != tt.wantReason {
				t.Errorf("outcome %q reason %q, want %q %q", r.Outcome, r.HandoffReason, tt.wantOutcome, tt.wantReason)
			}
			var texts []string
			for _, m := range r.Messages {
				texts = append(texts, m.Text)
				if m.Handoff != nil && tt.wantReason == "" {
					t.Errorf("unrequested handoff in %+v", m)
				}
			}
			if len(texts) != len(tt.wantTexts) || texts[0] != tt.wantTexts[0] {
				t.Errorf("texts %q, want %q", texts, tt.wantTexts)
			}
			if h, _ := st.History(context.Background(), "bot/c1"); len(h) != tt.wantHistory {
				t.Errorf("history %d turns, want %d", len(h), tt.wantHistory)
			}
		})
	}
}

// A busy answer is not kept as the key's answer: Kommunicate's retry of
// the key gets a fresh try.
func TestBusyIsNotTheDedupeRecord(t *testing.T) {
	m := &scripted{answer: fails(llm.ErrBusy)}
	b := testBridge(t, m, Deps{})
	if r, _ := b.Handle(context.Background(), message("k", "hi")); r.Outcome != kommbridge.OutcomeBusy {
		t.Fatalf("first: %q", r.Outcome)
	}
	m.answer = says("Now I can.")
	r, _ := b.Handle(context.Background(), message("k", "hi"))
	if r.Outcome != kommbridge.OutcomeAnswered || r.Messages[0].Text != "Now I can." {
		t.Errorf("retry: %q %+v", r.Outcome, r.Messages)
	}
}

// An event whose budget is spent before it starts calls no model.
func TestNoModelCallAfterTheDeadline(t *testing.T) {
	m := &scripted{answer: says("too late")}
	b := testBridge(t, m, Deps{})
	ev := message("k", "hi")
	ev.ReceivedAt = time.Now().Add(-3 * time.Second) // the budget is 2 s
	r, _ := b.Handle(context.Background(), ev)
	if r.Outcome != kommbridge.OutcomeBusy || m.calls.Load() != 0 {
		t.Errorf("outcome %q, model calls %d; want busy and none", r.Outcome, m.calls.Load())
	}
}

// A caller that is gone before the answer does not stop it: it is made,
// written to history and kept for the key's retry.
func TestCallerGoneStillAnswered(t *testing.T) {
	st := newStore()
	m := &scripted{answer: func(ctx context.Context) (llm.Response, error) {
		if ctx.Err() != nil {
			return llm.Response{}, &llm.Error{Kind: llm.ErrTimeout, Err: ctx.Err()}
		}
		return says("Still here.")(ctx)
	}}
	b := testBridge(t, m, Deps{Store: st})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, _ := b.Handle(ctx, message("k", "hi"))
	if r.Outcome != kommbridge.OutcomeAnswered {
		t.Fatalf("outcome %q: %v", r.Outcome, r.Err)
	}
	again, _ := b.Handle(context.Background(), message("k", "hi"))
	if again.Outcome != kommbridge.OutcomeDuplicate || again.Messages[0].Text != "Still here." || m.calls.Load() != 1 {
		t.Errorf("retry: %q %+v, %d calls", again.Outcome, again.Messages, m.calls.Load())
	}
}

// With the shared store out, events are answered degraded from the local
// stand-in, the outage is reported once, and its end once.
func TestStoreOutageDegrades(t *testing.T) {
	shared := &flaky{Store: newStore()}
	var changes []bool
	outcomes := &countedOutcomes{Store: newStore()}
	b := testBridge(t, &scripted{answer: says("Answer.")}, Deps{Store: shared, Local: newStore(), Outcomes: outcomes, OnOutage: func(down bool) { changes = append(changes, down) }})
	ctx := context.Background()
	b.Handle(ctx, message("k0", "before"))
	shared.down.Store(true)
	for _, k := range []string{"k1", "k2", "k3"} {
		r, _ := b.Handle(ctx, message(k, "during"))
		if r.Outcome != kommbridge.OutcomeDegraded || !r.Degraded || r.HandoffReason != "" || r.Messages[0].Text != "Answer." {
			t.Errorf("%s: outcome %q degraded %v reason %q %+v", k, r.Outcome, r.Degraded, r.HandoffReason, r.Messages)
		}
	}
	shared.down.Store(false)
	b.guard.skipUntil.Store(0) // the retry interval, passed
	r, _ := b.Handle(ctx, message("k4", "after"))
	if r.Outcome != kommbridge.OutcomeAnswered || r.Degraded {
		t.Errorf("after: %q degraded %v", r.Outcome, r.Degraded)
	}
	if len(changes) != 2 || !changes[0] || changes[1] {
		t.Errorf("outage reports %v, want [true false]", changes)
	}
	if h, _ := shared.History(ctx, "bot/c1"); len(h) != 4 {
		t.Errorf("shared history %d turns, want 4 (before and after)", len(h))
	}
	b.jobs.Wait()
	if n := outcomes.updates.Load(); n != 2 {
		t.Errorf("%d outcome updates, want 2 (before and after; none against the store while it is out)", n)
	}
}

// countedOutcomes counts the outcome updates it is asked for.
type countedOutcomes struct {
	*memory.Store
	updates atomic.Int32
}

func (c *countedOutcomes) UpdateOutcome(ctx context.Context, conv string, step kommbridge.Step, ttl time.Duration) (string, error) {
	c.updates.Add(1)
	return c.Store.UpdateOutcome(ctx, conv, step, ttl)
}

// With no local stand-in (store.on_outage: error), an outage applies the
// error policy.
func TestStoreOutageWithoutStandIn(t *testing.T) {
	shared := &flaky{Store: newStore()}
	shared.down.Store(true)
	b := testBridge(t, &scripted{answer: says("Answer.")}, Deps{Store: shared})
	r, _ := b.Handle(context.Background(), message("k", "hi"))
	if r.Outcome != kommbridge.OutcomeHandoff || r.HandoffReason != kommbridge.HandoffError {
		t.Errorf("outcome %q reason %q", r.Outcome, r.HandoffReason)
	}
}

// An answer made while the conversation's lock was lost reaches the user
// but not the history another event may own now.
func TestLostLockWritesNoHistory(t *testing.T) {
	st := &flaky{Store: newStore()}
	st.lost.Store(true)
	b := testBridge(t, &scripted{answer: says("Answer.")}, Deps{Store: st})
	r, _ := b.Handle(context.Background(), message("k", "hi"))
	if r.Outcome != kommbridge.OutcomeAnswered {
		t.Fatalf("outcome %q", r.Outcome)
	}
	if h, _ := st.History(context.Background(), "bot/c1"); len(h) != 0 {
		t.Errorf("history %v, want none", h)
	}
}

// trickling is Media whose every fetch lasts until its deadline.
type trickling struct{}

func (trickling) ReadAll(ctx context.Context, atts []kommbridge.Attachment, _ bool) []media.Item {
	<-ctx.Done()
	items := make([]media.Item, len(atts))
	for i, a := range atts {
		items[i] = media.Item{Kind: media.Document, Name: a.Name, Err: ctx.Err()}
	}
	return items
}

// A slow attachment takes at most its share of the budget: the model
// still gets time to answer.
func TestSlowAttachmentLeavesTheModelTime(t *testing.T) {
	var left time.Duration
	m := &scripted{answer: func(ctx context.Context) (llm.Response, error) {
		dl, _ := ctx.Deadline()
		left = time.Until(dl)
		return says("I could not open your file.")(ctx)
	}}
	b := testBridge(t, m, Deps{Media: trickling{}})
	ev := message("k", "see attached")
	ev.Attachments = []kommbridge.Attachment{{Type: "application/pdf", Name: "big.pdf", URL: "https://files.example/big.pdf"}}
	r, _ := b.Handle(context.Background(), ev)
	if r.Outcome != kommbridge.OutcomeAnswered {
		t.Fatalf("outcome %q: %v", r.Outcome, r.Err)
	}
	if left < 500*time.Millisecond {
		t.Errorf("the model got %v of a 2s budget", left)
	}
}

// Token probabilities are asked for only by a bot that judges them.
func TestLogProbsAskedWhenJudged(t *testing.T) {
	m := &scripted{answer: says("Hi.")}
	b := testBridge(t, m, Deps{})
	b.Handle(context.Background(), message("k1", "hi"))
	if m.last.LogProbs {
		t.Error("logprobs asked for by a bot without min_token_confidence")
	}
	cfg, _ := config.Parse(nil, "test.yaml", func(string) string { return "" })
	cfg.Bots[0].Handoff.MinTokenConfidence = 0.6
	if err := b.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	b.Handle(context.Background(), message("k2", "hi"))
	if !m.last.LogProbs {
		t.Error("logprobs not asked for by a bot with min_token_confidence")
	}
}

// Over the model's context: asked again at once with the older half of
// the history dropped, and the history kept trimmed the same way; when
// even that does not fit, the too-long message and a fresh history.
func TestContextOverflow(t *testing.T) {
	st := newStore()
	ctx := context.Background()
	var sizes []int
	fits := 6 // messages the fake model's context holds
	m := &scripted{}
	m.answer = func(context.Context) (llm.Response, error) {
		n := len(m.last.Messages)
		sizes = append(sizes, n)
		if n > fits {
			return llm.Response{}, &llm.Error{Kind: llm.ErrContextOverflow, Err: errors.New("maximum context length")}
		}
		return says("Fits.")(ctx)
	}
	b := testBridge(t, m, Deps{Store: st})
	for i := 0; i < 4; i++ {
		st.Append(ctx, "bot/c1", kommbridge.Turn{Role: "user", Text: "old"}, kommbridge.Turn{Role: "assistant", Text: "old answer"})
	}
	r, _ := b.Handle(ctx, message("k1", "new question"))
	if r.Outcome != kommbridge.OutcomeAnswered || r.Messages[0].Text != "Fits." {
		t.Fatalf("outcome %q %+v (%v)", r.Outcome, r.Messages, r.Err)
	}
	// system + 8 turns + user = 10 messages; then system + the 4 newest + user = 6.
	if len(sizes) != 2 || sizes[0] != 10 || sizes[1] != 6 {
		t.Errorf("request sizes %v, want [10 6]", sizes)
	}
	if h, _ := st.History(ctx, "bot/c1"); len(h) != 4+2 {
		t.Errorf("history after the overflow: %d turns, want the 4 kept and the new exchange", len(h))
	}
	fits = 1 // now nothing fits
	sizes = nil
	r, _ = b.Handle(ctx, message("k2", "another"))
	if r.Outcome != kommbridge.OutcomeTooLong || r.HandoffReason != "" || len(r.Messages) != 1 {
		t.Errorf("outcome %q reason %q %+v", r.Outcome, r.HandoffReason, r.Messages)
	}
	if h, _ := st.History(ctx, "bot/c1"); len(h) != 0 {
		t.Errorf("history after too long: %d turns, want none", len(h))
	}
}

// The shortened request starts the history at a user turn: some backends
// refuse a conversation that opens with the assistant (a welcome, or half
// of an exchange).
func TestContextOverflowCutsAtAUserTurn(t *testing.T) {
	st := newStore()
	ctx := context.Background()
	var firsts []string
	m := &scripted{}
	m.answer = func(context.Context) (llm.Response, error) {
		firsts = append(firsts, m.last.Messages[1].Role)
		if len(firsts) == 1 {
			return llm.Response{}, &llm.Error{Kind: llm.ErrContextOverflow, Err: errors.New("maximum context length")}
		}
		return says("Fits.")(ctx)
	}
	b := testBridge(t, m, Deps{Store: st})
	st.Append(ctx, "bot/c1", kommbridge.Turn{Role: "assistant", Text: "Welcome!"})
	for i := 0; i < 3; i++ {
		st.Append(ctx, "bot/c1", kommbridge.Turn{Role: "user", Text: "old"}, kommbridge.Turn{Role: "assistant", Text: "old answer"})
	}
	if r, _ := b.Handle(ctx, message("k1", "new question")); r.Outcome != kommbridge.OutcomeAnswered {
		t.Fatalf("outcome %q (%v)", r.Outcome, r.Err)
	}
	if len(firsts) != 2 || firsts[1] != "user" {
		t.Errorf("the turns after the system message begin with %v, want the retry's with user", firsts)
	}
}

// The handoff mark is read only when a decision would assign under the
// cooldown: a second handoff the model asks for inside the cooldown does
// not assign again, the user's button always does without reading it, and
// an ordinary answer never reads it.
func TestCooldownReadsTheMark(t *testing.T) {
	handoff := true
	m := &scripted{answer: func(context.Context) (llm.Response, error) {
		return llm.Response{Content: fmt.Sprintf(`{"reply":"Connecting you.","confidence":0.9,"handoff":%v}`, handoff)}, nil
	}}
	st := &flaky{Store: newStore()}
	b := testBridge(t, m, Deps{Store: st})
	assigned := func(r Result) bool {
		for _, msg := range r.Messages {
			if msg.Handoff != nil {
				return true
			}
		}
		return false
	}
	ctx := context.Background()
	reads := func() int32 { return st.markReads.Swap(0) }
	first, _ := b.Handle(ctx, message("k1", "refund"))
	firstReads := reads()
	second, _ := b.Handle(ctx, message("k2", "refund again"))
	secondReads := reads()
	button := message("k3", "Talk to human")
	button.TalkToHuman = true
	third, _ := b.Handle(ctx, button)
	buttonReads := reads()
	handoff = false
	b.Handle(ctx, message("k4", "thanks"))
	answerReads := reads()
	if !assigned(first) || assigned(second) || !assigned(third) {
		t.Errorf("assigned: first %v, second %v (inside the cooldown), button %v", assigned(first), assigned(second), assigned(third))
	}
	if firstReads != 1 || secondReads != 1 || buttonReads != 0 || answerReads != 0 {
		t.Errorf("mark reads: model handoffs %d and %d (want 1 each), button %d, answer %d (want 0)", firstReads, secondReads, buttonReads, answerReads)
	}
}

// deadlines is a store that, as Redis would, fails a write whose context
// has ended, and notes each write's deadline.
type deadlines struct {
	*memory.Store
	mu     sync.Mutex
	writes map[string]time.Time
}

func (d *deadlines) note(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dl, _ := ctx.Deadline()
	d.mu.Lock()
	d.writes[op] = dl
	d.mu.Unlock()
	return nil
}

func (d *deadlines) Append(ctx context.Context, conv string, turns ...kommbridge.Turn) error {
	if err := d.note(ctx, "history"); err != nil {
		return err
	}
	return d.Store.Append(ctx, conv, turns...)
}

func (d *deadlines) MarkHandoff(ctx context.Context, conv string, at time.Time) error {
	if err := d.note(ctx, "handoff mark"); err != nil {
		return err
	}
	return d.Store.MarkHandoff(ctx, conv, at)
}

func (d *deadlines) Finish(ctx context.Context, key string, answer []byte) error {
	if err := d.note(ctx, "dedupe record"); err != nil {
		return err
	}
	return d.Store.Finish(ctx, key, answer)
}

// The model's time ends a moment before the budget (a tenth of it, at
// most 250ms), leaving time to answer; the store writes after a model
// that ran out of time still get a moment of their own, so the handoff
// is marked, the history kept and a retry of the key gets the same answer.
func TestWritesAfterTheModelsTime(t *testing.T) {
	st := &deadlines{Store: newStore(), writes: map[string]time.Time{}}
	var modelEnd time.Time
	m := &scripted{answer: func(ctx context.Context) (llm.Response, error) {
		modelEnd, _ = ctx.Deadline()
		<-ctx.Done()
		return llm.Response{}, &llm.Error{Kind: llm.ErrTimeout, Endpoint: "e", Err: ctx.Err()}
	}}
	b := testBridge(t, m, Deps{Store: st}) // a 2 s budget
	ev := message("k", "hi")
	ev.ReceivedAt = time.Now().Add(-1700 * time.Millisecond)
	r, _ := b.Handle(context.Background(), ev)
	if want := ev.ReceivedAt.Add(1800 * time.Millisecond); !modelEnd.Equal(want) {
		t.Errorf("the model's deadline is %v after the event, want 1.8s", modelEnd.Sub(ev.ReceivedAt))
	}
	if r.Outcome != kommbridge.OutcomeHandoff || r.HandoffReason != kommbridge.HandoffTimeout {
		t.Fatalf("outcome %q reason %q", r.Outcome, r.HandoffReason)
	}
	for _, op := range []string{"history", "handoff mark", "dedupe record"} {
		dl, ok := st.writes[op]
		if !ok {
			t.Errorf("%s not written", op)
			continue
		}
		if left := dl.Sub(modelEnd); left < time.Second {
			t.Errorf("%s written with %v past the model's deadline, want a moment of its own", op, left)
		}
	}
	again, _ := b.Handle(context.Background(), ev)
	if again.Outcome != kommbridge.OutcomeDuplicate || m.calls.Load() != 1 {
		t.Errorf("retry: %q after %d model calls", again.Outcome, m.calls.Load())
	}
}

// An event's store writes share one context, with a moment of its own
// from the first write; one made long before (a read early in the event)
// is made again.
func TestWritesShareAMoment(t *testing.T) {
	e := &event{}
	defer e.end()
	ctx := context.Background()
	first := e.writeCtx(ctx)
	if again := e.writeCtx(ctx); again != first {
		t.Error("the event's writes did not share a context")
	}
	e.writes, e.cancelWrites = context.WithTimeout(context.Background(), 10*time.Millisecond)
	later := e.writeCtx(ctx)
	if dl, _ := later.Deadline(); time.Until(dl) < writeTime/2 || later.Err() != nil {
		t.Errorf("a write after a context nearly spent got %v", time.Until(dl))
	}
}
