// Package storetest is the contract every kommbridge store passes: the
// same tests run against store/memory and store/redis.
package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/bridge"
)

// Store is the method set under test: what the bridge needs, Ping, and
// the unanswered questions kb gaps reads.
type Store interface {
	bridge.Store
	bridge.Gaps
	Ping(ctx context.Context) error
	Gaps(ctx context.Context, base string, n int) ([]kommbridge.Gap, error)
	bridge.Outcomes
}

// Run runs the contract against stores from newStore, which must return
// an empty store keeping 3 turns per conversation.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	ctx := context.Background()
	turn := func(s string) kommbridge.Turn { return kommbridge.Turn{Role: "user", Text: s} }

	t.Run("messages waiting for the lock join the newest", func(t *testing.T) {
		s := newStore(t)
		if texts, q, err := s.Dequeue(ctx, "c", "never-queued"); err != nil || q != kommbridge.Alone || texts != nil {
			t.Errorf("a message never queued: %v %v %v", texts, q, err)
		}
		for _, k := range []string{"a", "b", "c"} {
			if err := s.Queue(ctx, "c", k, "text "+k); err != nil {
				t.Fatal(err)
			}
		}
		s.Queue(ctx, "other", "x", "text x")
		if texts, q, _ := s.Dequeue(ctx, "c", "a"); q != kommbridge.Joined || texts != nil {
			t.Errorf("a, with newer messages waiting: %v %v", texts, q)
		}
		if texts, q, _ := s.Dequeue(ctx, "c", "c"); q != kommbridge.Answer || fmt.Sprint(texts) != "[text a text b text c]" {
			t.Errorf("c, the newest: %v %v", texts, q)
		}
		if texts, q, _ := s.Dequeue(ctx, "c", "b"); q != kommbridge.Joined || texts != nil {
			t.Errorf("b, taken by c: %v %v", texts, q)
		}
		if _, q, _ := s.Dequeue(ctx, "c", "b"); q != kommbridge.Alone {
			t.Errorf("b again: %v", q)
		}
		if texts, q, _ := s.Dequeue(ctx, "other", "x"); q != kommbridge.Answer || fmt.Sprint(texts) != "[text x]" {
			t.Errorf("another conversation's queue: %v %v", texts, q)
		}
	})
	t.Run("history in order, trimmed", func(t *testing.T) {
		s := newStore(t)
		for _, m := range []string{"1", "2", "3", "4"} {
			if err := s.Append(ctx, "c", turn(m)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.History(ctx, "c")
		if err != nil || fmt.Sprint(got) != fmt.Sprint([]kommbridge.Turn{turn("2"), turn("3"), turn("4")}) {
			t.Errorf("history %v, %v", got, err)
		}
		if other, _ := s.History(ctx, "other"); len(other) != 0 {
			t.Errorf("another conversation has %v", other)
		}
	})
	t.Run("trim keeps the last turns and the handoff mark", func(t *testing.T) {
		s := newStore(t)
		s.Append(ctx, "c", turn("1"), turn("2"), turn("3"))
		at := time.Unix(1700000000, 0)
		s.MarkHandoff(ctx, "c", at)
		if err := s.Trim(ctx, "c", 1); err != nil {
			t.Fatal(err)
		}
		got, _ := s.History(ctx, "c")
		when, _ := s.HandoffAt(ctx, "c")
		if fmt.Sprint(got) != fmt.Sprint([]kommbridge.Turn{turn("3")}) || !when.Equal(at) {
			t.Errorf("after trim to 1: %v, handoff %v", got, when)
		}
		s.Trim(ctx, "c", 0)
		if got, _ := s.History(ctx, "c"); len(got) != 0 {
			t.Errorf("after trim to 0: %v", got)
		}
		if err := s.Trim(ctx, "unknown", 3); err != nil {
			t.Errorf("trim of an unknown conversation: %v", err)
		}
	})
	t.Run("reset clears history and handoff", func(t *testing.T) {
		s := newStore(t)
		s.Append(ctx, "c", turn("old"))
		at := time.Unix(1700000000, 0)
		if err := s.MarkHandoff(ctx, "c", at); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.HandoffAt(ctx, "c"); !got.Equal(at) {
			t.Errorf("handoff at %v, want %v", got, at)
		}
		s.Reset(ctx, "c", turn("hello"))
		got, _ := s.History(ctx, "c")
		when, _ := s.HandoffAt(ctx, "c")
		if fmt.Sprint(got) != fmt.Sprint([]kommbridge.Turn{turn("hello")}) || !when.IsZero() {
			t.Errorf("after reset: %v, handoff %v", got, when)
		}
	})
	t.Run("lock serializes one conversation only", func(t *testing.T) {
		s := newStore(t)
		unlock, err := s.Lock(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, err := s.Lock(short, "c"); err == nil {
			t.Fatal("lock granted twice")
		}
		u2, err := s.Lock(ctx, "d")
		if err != nil {
			t.Fatal("another conversation blocked")
		}
		u2.Unlock()
		unlock.Unlock()
		u3, err := s.Lock(ctx, "c")
		if err != nil {
			t.Fatal("not released")
		}
		u3.Unlock()
	})
	t.Run("dedupe: one claim, waiters get the answer", func(t *testing.T) {
		s := newStore(t)
		if _, claimed, err := s.Claim(ctx, "k"); !claimed || err != nil {
			t.Fatalf("first claim: %v %v", claimed, err)
		}
		var wg sync.WaitGroup
		answers := make([]string, 3)
		for i := range answers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, claimed, err := s.Claim(ctx, "k")
				if claimed || err != nil {
					t.Errorf("waiter %d: claimed=%v err=%v", i, claimed, err)
				}
				answers[i] = string(a)
			}()
		}
		if err := s.Finish(ctx, "k", []byte(`[{"message":"x"}]`)); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for i, a := range answers {
			if a != `[{"message":"x"}]` {
				t.Errorf("waiter %d got %q", i, a)
			}
		}
	})
	t.Run("dedupe: release hands the claim on", func(t *testing.T) {
		s := newStore(t)
		s.Claim(ctx, "k")
		done := make(chan bool)
		go func() {
			_, claimed, _ := s.Claim(ctx, "k")
			done <- claimed
		}()
		s.Release(ctx, "k")
		if !<-done {
			t.Error("waiter did not get the claim")
		}
	})
	t.Run("unanswered questions, most asked first, per base", func(t *testing.T) {
		s := newStore(t)
		for _, q := range []string{"do you sell bikes", "can i pay with cash", "do you sell bikes", "do you sell bikes", "can i pay with cash", "who is the ceo"} {
			if err := s.RecordGap(ctx, "help", q); err != nil {
				t.Fatal(err)
			}
		}
		s.RecordGap(ctx, "other", "elsewhere")
		got, err := s.Gaps(ctx, "help", 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Question != "do you sell bikes" || got[0].Count != 3 || got[1].Question != "can i pay with cash" || got[1].Count != 2 || got[0].Last.IsZero() {
			t.Errorf("gaps: %+v", got)
		}
		if none, err := s.Gaps(ctx, "nothing", 5); err != nil || len(none) != 0 {
			t.Errorf("an unknown base: %v %+v", err, none)
		}
	})

	t.Run("outcome records, decided once", func(t *testing.T) {
		s := newStore(t)
		now := time.Now()
		steps := []kommbridge.Step{{At: now, Bot: "b", User: true, Answered: true, Resolved: true}, {At: now, User: true, Answered: true},
			{At: now, User: true, HandoffReason: kommbridge.HandoffButton}}
		var decided []string
		for _, st := range steps {
			d, err := s.UpdateOutcome(ctx, "c1", st, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			decided = append(decided, d)
		}
		if fmt.Sprint(decided) != "[resolved reopened customer_request]" {
			t.Errorf("decided %v", decided)
		}
		s.UpdateOutcome(ctx, "c2", kommbridge.Step{At: now, Bot: "b", Answered: true}, time.Hour)
		recs, err := s.Outcomes(ctx, now.Add(-time.Minute))
		if err != nil || len(recs) != 2 {
			t.Fatalf("%v %+v", err, recs)
		}
		for _, r := range recs {
			if r.Conversation == "c1" && (r.UserMessages != 3 || r.Category != kommbridge.ConvCustomerRequest || r.Reopened != 1 || r.Bot != "b") {
				t.Errorf("c1: %+v", r)
			}
		}
		if recs, _ := s.Outcomes(ctx, now.Add(time.Hour)); len(recs) != 0 {
			t.Errorf("records active since later: %+v", recs)
		}
		first, err1 := s.MarkCounted(ctx, "c2", kommbridge.ConvAbandoned, time.Hour)
		again, err2 := s.MarkCounted(ctx, "c2", kommbridge.ConvAbandoned, time.Hour)
		if err1 != nil || err2 != nil || !first || again {
			t.Errorf("counted %v then %v (%v %v)", first, again, err1, err2)
		}
	})

	t.Run("ping", func(t *testing.T) {
		if err := newStore(t).Ping(ctx); err != nil {
			t.Error(err)
		}
	})
}

// RunLimiter runs the limits' contract against limiters from newLimiter,
// which must return a fresh limiter (no event counted yet) for the rates.
func RunLimiter(t *testing.T, newLimiter func(t *testing.T, conv, user, global kommbridge.Rate) bridge.Limiter) {
	ctx := context.Background()
	slow := 0.001 // no refill within a test
	t.Run("a refused event uses up no other limit", func(t *testing.T) {
		l := newLimiter(t, kommbridge.Rate{Per: slow, Burst: 5}, kommbridge.Rate{Per: slow, Burst: 1}, kommbridge.Rate{})
		allow := func(conv, user string) bool {
			ok, err := l.Allow(ctx, conv, user)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !allow("c1", "u1") {
			t.Fatal("first event refused")
		}
		if allow("c1", "u1") {
			t.Fatal("the user's second event allowed past a burst of 1")
		}
		// The conversation has 4 left, the refused event took none.
		for _, u := range []string{"u2", "u3", "u4", "u5"} {
			if !allow("c1", u) {
				t.Fatalf("event by %s refused: the refused event used up the conversation's allowance", u)
			}
		}
		if allow("c1", "u6") {
			t.Error("sixth event of a conversation with a burst of 5 allowed")
		}
		// Refused by the conversation: u6's own allowance is untouched.
		if !allow("c2", "u6") {
			t.Error("a user refused by a full conversation lost its own allowance")
		}
	})
	t.Run("the global limit counts every conversation", func(t *testing.T) {
		l := newLimiter(t, kommbridge.Rate{}, kommbridge.Rate{Per: slow, Burst: 1}, kommbridge.Rate{Per: slow, Burst: 2})
		got := []bool{}
		for _, u := range []string{"u1", "u1", "u2", "u3"} {
			ok, _ := l.Allow(ctx, "c-"+u, u)
			got = append(got, ok)
		}
		// u1's second event is refused by its own limit and takes no
		// global token, so u2 still gets one.
		if fmt.Sprint(got) != "[true false true false]" {
			t.Errorf("allowed %v, want [true false true false]", got)
		}
	})
}
