package memory_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/store/memory"
)

func TestLimits(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	l := memory.NewLimiter(memory.LimitOptions{
		Conversation: kommbridge.Rate{Per: 1, Burst: 2},
		User:         kommbridge.Rate{Per: 1, Burst: 3},
		Global:       kommbridge.Rate{Per: 10, Burst: 4},
		Now:          c.now,
	})
	allow := func(conv, user string) bool { ok, _ := l.Allow(ctx, conv, user); return ok }
	for i := range 2 {
		if !allow("c1", "u1") {
			t.Fatalf("event %d of the burst refused", i+1)
		}
	}
	if allow("c1", "u1") {
		t.Error("third event of a conversation with burst 2 allowed")
	}
	if !allow("c2", "u1") {
		t.Error("the user's other conversation refused: the refused event used up the user's bucket")
	}
	if allow("c3", "u1") {
		t.Error("user over burst 3 allowed")
	}
	if !allow("c4", "u2") {
		t.Error("another user refused")
	}
	if allow("c5", "u3") {
		t.Error("global burst 4 exceeded")
	}
	c.add(time.Second)
	if !allow("c1", "u9") {
		t.Error("not refilled after a second")
	}
}

// Idle buckets are dropped, so memory stays bounded however many users come.
func TestLimiterStaysBounded(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	l := memory.NewLimiter(memory.LimitOptions{Conversation: kommbridge.Rate{Per: 1, Burst: 5}, User: kommbridge.Rate{Per: 1, Burst: 5}, MaxKeys: 100, Now: c.now})
	for i := 0; i < 10_000; i++ {
		l.Allow(ctx, fmt.Sprint("c", i), fmt.Sprint("u", i))
		c.add(time.Millisecond)
	}
	if n := l.Len(); n > 200 {
		t.Errorf("%d buckets kept, want at most 200", n)
	}
}
