package memory

import (
	"context"
	"sync"
	"time"

	"github.com/kommbridge/kommbridge"
)

// maxOutcomes bounds the outcome records kept; past it the least recently
// active go first.
const maxOutcomes = 100_000

type outcomes struct {
	mu      sync.Mutex
	records map[string]*outcomeEntry
	counted map[string]bool
}

type outcomeEntry struct {
	rec     kommbridge.ConvRecord
	touched time.Time
}

// UpdateOutcome applies step to conv's outcome record and returns the
// outcome it decides, if any.
func (s *Store) UpdateOutcome(_ context.Context, conv string, step kommbridge.Step, ttl time.Duration) (string, error) {
	o := &s.outcomes
	o.mu.Lock()
	defer o.mu.Unlock()
	now := s.opts.Now()
	if o.records == nil {
		o.records = map[string]*outcomeEntry{}
	}
	e := o.records[conv]
	if e == nil || now.Sub(e.touched) > ttl {
		if len(o.records) >= maxOutcomes {
			o.dropOldest(now, ttl)
		}
		e = &outcomeEntry{rec: kommbridge.ConvRecord{Conversation: conv}}
		o.records[conv] = e
	}
	e.touched = now
	return e.rec.Apply(step), nil
}

// dropOldest makes room: every record past ttl, else the least recently
// touched one.
func (o *outcomes) dropOldest(now time.Time, ttl time.Duration) {
	var oldest string
	var at time.Time
	for k, e := range o.records {
		if now.Sub(e.touched) > ttl {
			delete(o.records, k)
			continue
		}
		if oldest == "" || e.touched.Before(at) {
			oldest, at = k, e.touched
		}
	}
	if len(o.records) >= maxOutcomes {
		delete(o.records, oldest)
	}
}

// Outcomes returns the records of the conversations active since since.
func (s *Store) Outcomes(_ context.Context, since time.Time) ([]kommbridge.ConvRecord, error) {
	o := &s.outcomes
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []kommbridge.ConvRecord
	for _, e := range o.records {
		if !e.touched.Before(since) {
			out = append(out, e.rec)
		}
	}
	return out, nil
}

// MarkCounted reports whether conv's outcome is counted for the first
// time (the sweep counts implicit resolutions and abandonments once).
func (s *Store) MarkCounted(_ context.Context, conv, outcome string, _ time.Duration) (bool, error) {
	o := &s.outcomes
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counted == nil {
		o.counted = map[string]bool{}
	}
	k := conv + "\x00" + outcome
	if o.counted[k] {
		return false, nil
	}
	o.counted[k] = true
	return true, nil
}
