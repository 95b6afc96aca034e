package memory_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/store/memory"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var ctx = context.Background()

func turn(s string) kommbridge.Turn { return kommbridge.Turn{Role: "user", Text: s} }

func TestSlidingTTL(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	s := memory.New(memory.Options{HistoryTTL: time.Hour, Now: c.now})
	s.Append(ctx, "a", turn("x"))
	c.add(50 * time.Minute)
	if h, _ := s.History(ctx, "a"); len(h) != 1 {
		t.Fatal("forgotten before its TTL")
	}
	c.add(50 * time.Minute) // 100 minutes after the write, 50 after the read
	if h, _ := s.History(ctx, "a"); len(h) != 1 {
		t.Fatal("a read did not extend the TTL")
	}
	c.add(61 * time.Minute)
	if h, _ := s.History(ctx, "a"); len(h) != 0 {
		t.Fatal("kept past its TTL")
	}
}

// The cap holds, and the least recently used conversation goes first.
func TestLRUCap(t *testing.T) {
	s := memory.New(memory.Options{MaxConversations: 64}) // one per shard
	for i := 0; i < 1000; i++ {
		s.Append(ctx, fmt.Sprint("conv-", i), turn("x"))
	}
	if n := s.Len(); n > 64 {
		t.Errorf("%d conversations held, cap 64", n)
	}
	if h, _ := s.History(ctx, "conv-999"); len(h) != 1 {
		t.Error("the most recent conversation was evicted")
	}
}

// The turns History returned stay as they were while the conversation
// goes on: appends past the cap, a trim, a reset.
func TestHistoryReadStaysValid(t *testing.T) {
	s := memory.New(memory.Options{HistoryTurns: 4})
	s.Append(ctx, "c", turn("one"), kommbridge.Turn{Role: "assistant", Text: "two"}, turn(""), turn("four é 🚚"))
	read, _ := s.History(ctx, "c")
	want := fmt.Sprint(read)
	for i := range 50 {
		s.Append(ctx, "c", turn(strings.Repeat("x", i)))
	}
	s.Trim(ctx, "c", 1)
	s.Reset(ctx, "c", turn("new"))
	s.Append(ctx, "c", turn("newer"))
	if got := fmt.Sprint(read); got != want {
		t.Errorf("an earlier read changed: %s, was %s", got, want)
	}
	if want != "[{user one} {assistant two} {user } {user four é 🚚}]" {
		t.Errorf("read %s", want)
	}
	now, _ := s.History(ctx, "c")
	if fmt.Sprint(now) != "[{user new} {user newer}]" {
		t.Errorf("history now %v", now)
	}
	s.Trim(ctx, "c", 0)
	if h, _ := s.History(ctx, "c"); len(h) != 0 {
		t.Errorf("after a trim to 0: %v", h)
	}
}

func TestDedupeExpires(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	s := memory.New(memory.Options{DedupeTTL: time.Minute, Now: c.now})
	s.Claim(ctx, "k")
	s.Finish(ctx, "k", []byte("a"))
	c.add(2 * time.Minute)
	if _, claimed, _ := s.Claim(ctx, "k"); !claimed {
		t.Error("record kept past dedupe_ttl")
	}
}

// A claim whose answerer never finished nor released it (it is gone) is
// taken over after dedupe_ttl, rather than keeping the key's retries
// waiting for ever; before that, a retry waits for it.
func TestAbandonedClaimTakenOver(t *testing.T) {
	c := &clock{t: time.Unix(0, 0)}
	s := memory.New(memory.Options{DedupeTTL: time.Minute, Now: c.now})
	s.Claim(ctx, "k")
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, claimed, err := s.Claim(short, "k"); claimed || err == nil {
		t.Fatalf("a retry during the claim: claimed %v, err %v; want to wait", claimed, err)
	}
	c.add(2 * time.Minute)
	if _, claimed, _ := s.Claim(ctx, "k"); !claimed {
		t.Fatal("an abandoned claim was not taken over")
	}
	s.Finish(ctx, "k", []byte("a"))
	if a, claimed, _ := s.Claim(ctx, "k"); claimed || string(a) != "a" {
		t.Errorf("after the new answer: claimed %v, %q", claimed, a)
	}
}

func BenchmarkAppendHistory(b *testing.B) {
	s := memory.New(memory.Options{MaxConversations: 100_000})
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = fmt.Sprint("bot/", i)
	}
	t := turn("where is my order?")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := keys[i%len(keys)]
		s.Append(ctx, k, t)
		s.History(ctx, k)
	}
}

// BenchmarkMillionTurns fills the store with 1,000,000 turns across
// 100,000 conversations (10 each), then keeps appending past the cap of
// conversations: memory stays bounded and eviction costs the same.
func BenchmarkMillionTurns(b *testing.B) {
	for b.Loop() {
		s := memory.New(memory.Options{MaxConversations: 100_000, HistoryTurns: 10})
		t := kommbridge.Turn{Role: "user", Text: "Where is my order? It was due on Monday."}
		keys := make([]string, 200_000)
		for i := range keys {
			keys[i] = fmt.Sprint("bot/", i)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := 0; i < 1_000_000; i++ {
			s.Append(ctx, keys[i%100_000], t)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		start := time.Now()
		for i := 0; i < 1_000_000; i++ { // 100,000 new conversations, each evicting an old one
			s.Append(ctx, keys[100_000+i%100_000], t)
		}
		evict := time.Since(start)
		var end runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&end)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(1<<20), "MB-for-1M-turns")
		b.ReportMetric(float64(end.HeapAlloc-before.HeapAlloc)/(1<<20), "MB-after-1M-more")
		b.ReportMetric(float64(evict.Nanoseconds())/1e6, "ns/append-with-eviction")
		if s.Len() > 100_000 {
			b.Fatalf("%d conversations held, cap 100000", s.Len())
		}
	}
}

// A million distinct message keys, past the dedupe cap: the records stay
// at the cap and the heap stays flat and small (31 MB here, race detector
// on, for 100,000 records of a 200-byte answer).
func TestDedupeStaysBounded(t *testing.T) {
	s := memory.New(memory.Options{MaxDedupe: 100_000, DedupeTTL: time.Hour})
	answer := []byte(strings.Repeat("a", 200))
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	var atCap uint64
	for i := range 1_000_000 {
		key := "bot/" + strconv.Itoa(i)
		if _, claimed, _ := s.Claim(ctx, key); !claimed {
			t.Fatalf("key %d not claimed", i)
		}
		s.Finish(ctx, key, answer)
		if i == 200_000 {
			atCap = heap()
		}
	}
	if n := s.DedupeLen(); n != 100_000 {
		t.Errorf("%d records, want the cap, 100000", n)
	}
	end := heap()
	if end > 150<<20 {
		t.Errorf("heap %d MB after a million keys, want under 150 MB", end>>20)
	}
	if end > atCap+atCap/4 {
		t.Errorf("heap grew from %d MB at the cap to %d MB: not flat", atCap>>20, end>>20)
	}
	t.Logf("heap %d MB at the cap, %d MB after 1,000,000 keys", atCap>>20, end>>20)
	// The newest are remembered, the oldest are not.
	if got, claimed, _ := s.Claim(ctx, "bot/999999"); claimed || string(got) != string(answer) {
		t.Error("the newest record was dropped")
	}
	if _, claimed, _ := s.Claim(ctx, "bot/0"); !claimed {
		t.Error("the oldest record was kept past the cap")
	}
}

// BenchmarkDedupeFull is what a full dedupe store (100,000 answers of 200
// bytes, the default cap) costs: its heap, and the garbage collector's
// time to mark it, which every collection pays while the store is full.
func BenchmarkDedupeFull(b *testing.B) {
	benchFull(b, 100_000, "record", func() *memory.Store {
		s := memory.New(memory.Options{MaxDedupe: 100_000, DedupeTTL: time.Hour})
		for i := range 100_000 {
			key := "5-16650159-" + strconv.Itoa(1550757013897+i)
			s.Claim(ctx, key)
			s.Finish(ctx, key, []byte(strings.Repeat("a", 200))) // each answer its own, as the bridge's are
		}
		return s
	})
}

// BenchmarkHistoryFull: the same for a full history store (100,000
// conversations of 20 turns, the defaults).
func BenchmarkHistoryFull(b *testing.B) {
	benchFull(b, 100_000, "conversation", func() *memory.Store {
		s := memory.New(memory.Options{MaxConversations: 100_000, HistoryTurns: 20})
		for c := range 100_000 {
			conv := "bot/" + strconv.Itoa(16650159+c)
			for i := range 10 {
				s.Append(ctx, conv, kommbridge.Turn{Role: "user", Text: "Where is my order? It was due on Monday. " + strconv.Itoa(i)},
					kommbridge.Turn{Role: "assistant", Text: "Your order shipped on Monday and arrives on Thursday. " + strconv.Itoa(i)})
			}
		}
		return s
	})
}

// benchFull reports the heap of the store fill makes, per one of its n
// units, and times a collection while the store is held.
func benchFull(b *testing.B, n int, unit string, fill func() *memory.Store) {
	var before, full runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := fill()
	runtime.GC()
	runtime.ReadMemStats(&full)
	b.ResetTimer()
	for b.Loop() {
		runtime.GC()
	}
	runtime.KeepAlive(s)
	b.ReportMetric(float64(full.HeapAlloc-before.HeapAlloc)/float64(n), "B/"+unit)
}
