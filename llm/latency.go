package llm

import (
	"slices"
	"sync"
	"time"
)

// latencies keeps an endpoint's recent successful call times, to know how
// long it usually takes: a call that cannot get that long is not started
// (the caller answers "busy" instead of timing out), and a timeout counts
// against the endpoint only after it had well over that long.
type latencies struct {
	mu   sync.Mutex
	ring [32]time.Duration
	n    int // calls recorded, saturating at len(ring)
	next int
}

// minSamples is how many calls it takes before the median is used.
const minSamples = 8

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.next] = d
	l.next = (l.next + 1) % len(l.ring)
	l.n = min(l.n+1, len(l.ring))
}

// median is the recent calls' median time; 0 before minSamples calls.
func (l *latencies) median() time.Duration {
	l.mu.Lock()
	if l.n < minSamples {
		l.mu.Unlock()
		return 0
	}
	s := make([]time.Duration, l.n)
	copy(s, l.ring[:l.n])
	l.mu.Unlock()
	slices.Sort(s)
	return s[len(s)/2]
}
