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
