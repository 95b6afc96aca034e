package memory

import (
	"context"
	"hash/maphash"
	"testing"
)

// Records are found by their key's hash, and the key itself is compared:
// another key with the same hash is not given the record's answer.
func TestDedupeHashCollision(t *testing.T) {
	ctx := context.Background()
	s := New(Options{})
	s.Claim(ctx, "first")
	s.Finish(ctx, "first", []byte("answer to first"))
	d := &s.dedupe
	// "second" is made to share "first"'s hash, as a collision would.
	d.mu.Lock()
	h := maphash.String(d.seed, "first")
	a, found := d.lookup("second", h)
	d.mu.Unlock()
	if found {
		t.Fatalf("another key with the same hash got %q", a)
	}
	if a, claimed, _ := s.Claim(ctx, "first"); claimed || string(a) != "answer to first" {
		t.Errorf("the record's own key: claimed %v, %q", claimed, a)
	}
}

// A small cap: the ring wraps, the newest records stay, in order.
func TestDedupeRingWraps(t *testing.T) {
	ctx := context.Background()
	s := New(Options{MaxDedupe: 3})
	for i := range 10 {
		key := string(rune('a' + i))
		s.Claim(ctx, key)
		s.Finish(ctx, key, []byte("answer "+key))
	}
	if n := s.DedupeLen(); n != 3 {
		t.Errorf("%d records, want 3", n)
	}
	for i := range 10 {
		key := string(rune('a' + i))
		a, claimed, _ := s.Claim(ctx, key)
		if kept := i >= 7; kept != !claimed || (kept && string(a) != "answer "+key) {
			t.Errorf("%s: claimed %v, answer %q", key, claimed, a)
		}
		if claimed {
			s.Release(ctx, key)
		}
	}
}
