package redis_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/store/redis"
	"github.com/kommbridge/kommbridge/store/redis/redistest"
	"github.com/kommbridge/kommbridge/store/storetest"
)

var prefixes atomic.Int64

func newStore(t *testing.T, r *redistest.Server) *redis.Store {
	s, err := redis.New(r.URL, redis.Options{HistoryTurns: 3, Prefix: fmt.Sprintf("test%d:", prefixes.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	r := redistest.Start(t)
	storetest.Run(t, func(t *testing.T) storetest.Store { return newStore(t, r) })
}

func TestLimiterContract(t *testing.T) {
	r := redistest.Start(t)
	storetest.RunLimiter(t, func(t *testing.T, conv, user, global kommbridge.Rate) bridge.Limiter {
		return newStore(t, r).NewLimiter(conv, user, global)
	})
}

func TestLimits(t *testing.T) {
	r := redistest.Start(t)
	s := newStore(t, r)
	l := s.NewLimiter(kommbridge.Rate{Per: 0.001, Burst: 2}, kommbridge.Rate{Per: 0.001, Burst: 3}, kommbridge.Rate{})
	ctx := context.Background()
	allow := func(conv, user string) bool {
		ok, err := l.Allow(ctx, conv, user)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	var got []bool
	for range 3 {
		got = append(got, allow("c1", "u1"))
	}
	if fmt.Sprint(got) != "[true true false]" {
		t.Errorf("conversation with burst 2: %v, want [true true false]", got)
	}
	if !allow("c2", "u1") || allow("c3", "u1") {
		t.Error("user burst of 3 not enforced, or a refused event used up the user's bucket")
	}
	// A second replica sees the same buckets.
	other := s.NewLimiter(kommbridge.Rate{Per: 0.001, Burst: 2}, kommbridge.Rate{Per: 0.001, Burst: 3}, kommbridge.Rate{})
	if ok, _ := other.Allow(ctx, "c1", "u9"); ok {
		t.Error("another replica's limiter does not share the conversation's bucket")
	}
}

// Redis killed and started again: errors while down, then it works again
// without a new client.
func TestReconnects(t *testing.T) {
	r := redistest.Start(t)
	if r.External {
		t.Skip("REDIS_URL names an external server; not killing it")
	}
	s := newStore(t, r)
	ctx := context.Background()
	if err := s.Append(ctx, "c", turnOf("before")); err != nil {
		t.Fatal(err)
	}
	r.Kill()
	if err := s.Ping(ctx); err == nil {
		t.Fatal("ping succeeded with Redis down")
	}
	if _, err := s.History(ctx, "c"); err == nil {
		t.Fatal("history read with Redis down")
	}
	r.Start(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("no reconnect: %v", err)
	}
	h, err := s.History(ctx, "c")
	if err != nil || len(h) != 1 || h[0].Text != "before" {
		t.Errorf("after restart: %v %v (acknowledged history lost)", h, err)
	}
}

func turnOf(s string) kommbridge.Turn { return kommbridge.Turn{Role: "user", Text: s} }

// A lock held longer than its lease is renewed, not lost: a second taker
// still waits.
func TestLockOutlivesItsLease(t *testing.T) {
	r := redistest.Start(t)
	s, err := redis.New(r.URL, redis.Options{Lease: 150 * time.Millisecond, Prefix: fmt.Sprintf("lease%d:", prefixes.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	unlock, err := s.Lock(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	wait, cancel := context.WithTimeout(ctx, 600*time.Millisecond) // four leases
	defer cancel()
	if _, err := s.Lock(wait, "c"); err == nil {
		t.Fatal("the lock was taken again while held: its lease ran out")
	}
	unlock.Unlock()
	u, err := s.Lock(ctx, "c")
	if err != nil {
		t.Fatal("not released")
	}
	u.Unlock()
}

// A replica that dies holding a claim or a lock holds others back for one
// lease at most: its renewals stop with it, and the lease runs out.
func TestDeadOwnerFreesWithinALease(t *testing.T) {
	r := redistest.Start(t)
	prefix := fmt.Sprintf("dead%d:", prefixes.Add(1))
	lease := 300 * time.Millisecond
	dying, err := redis.New(r.URL, redis.Options{Lease: lease, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, claimed, err := dying.Claim(ctx, "k"); !claimed || err != nil {
		t.Fatalf("claim: %v %v", claimed, err)
	}
	if _, err := dying.Lock(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	dying.Close() // the replica is gone: no renewal, no unlock, no finish

	other, err := redis.New(r.URL, redis.Options{Lease: lease, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	start := time.Now()
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, claimed, err := other.Claim(wait, "k"); !claimed || err != nil {
		t.Fatalf("claim after the owner died: %v %v", claimed, err)
	}
	l, err := other.Lock(wait, "c")
	if err != nil {
		t.Fatalf("lock after the owner died: %v", err)
	}
	l.Unlock()
	if took := time.Since(start); took > 3*lease {
		t.Errorf("freed after %v, want within a lease (%v)", took, lease)
	}
}

// A claim held longer than its lease is renewed: a waiter keeps waiting
// for the answer instead of claiming the key too.
func TestClaimOutlivesItsLease(t *testing.T) {
	r := redistest.Start(t)
	s, err := redis.New(r.URL, redis.Options{Lease: 150 * time.Millisecond, Prefix: fmt.Sprintf("claim%d:", prefixes.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, claimed, _ := s.Claim(ctx, "k"); !claimed {
		t.Fatal("not claimed")
	}
	wait, cancel := context.WithTimeout(ctx, 600*time.Millisecond) // four leases
	defer cancel()
	if _, claimed, err := s.Claim(wait, "k"); claimed || err == nil {
		t.Fatalf("claimed twice (%v, %v): the lease ran out while the owner worked", claimed, err)
	}
	s.Finish(ctx, "k", []byte("answer"))
	if got, claimed, err := s.Claim(ctx, "k"); claimed || err != nil || string(got) != "answer" {
		t.Errorf("after finish: %q %v %v", got, claimed, err)
	}
}

// A lock whose lease passed to another owner reports itself lost, and the
// loss is told to OnLeaseLost.
func TestLostLockIsReported(t *testing.T) {
	r := redistest.Start(t)
	lost := make(chan string, 1)
	prefix := fmt.Sprintf("lost%d:", prefixes.Add(1))
	s, err := redis.New(r.URL, redis.Options{Lease: 150 * time.Millisecond, Prefix: prefix,
		OnLeaseLost: func(kind string, err error) { lost <- kind }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, err := s.Lock(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	if l.Lost() {
		t.Fatal("lost at once")
	}
	opt, _ := goredis.ParseURL(r.URL)
	c := goredis.NewClient(opt)
	defer c.Close()
	c.Del(context.Background(), prefix+"lk:c") // the lease ran out elsewhere
	if kind := <-lost; kind != "lock" || !l.Lost() {
		t.Errorf("told %q, Lost() %v", kind, l.Lost())
	}
	l.Unlock()
}
