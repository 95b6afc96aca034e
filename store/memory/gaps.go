package memory

import (
	"context"
	"slices"
	"sync"

	"github.com/kommbridge/kommbridge"
)

// maxGaps is how many unanswered questions a knowledge base keeps; past
// it, the least asked (the oldest of them first) make room.
const maxGaps = 1000

// gaps counts the questions the help center did not answer, per base.
type gaps struct {
	mu     sync.Mutex
	byBase map[string]map[string]*kommbridge.Gap
}

// RecordGap counts one more asking of question that base did not answer.
func (s *Store) RecordGap(_ context.Context, base, question string) error {
	g := &s.gaps
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byBase == nil {
		g.byBase = map[string]map[string]*kommbridge.Gap{}
	}
	m := g.byBase[base]
	if m == nil {
		m = map[string]*kommbridge.Gap{}
		g.byBase[base] = m
	}
	now := s.opts.Now()
	if e := m[question]; e != nil {
		e.Count++
		e.Last = now
		return nil
	}
	if len(m) >= maxGaps {
		var least *kommbridge.Gap
		for _, e := range m {
			if least == nil || e.Count < least.Count || (e.Count == least.Count && e.Last.Before(least.Last)) {
				least = e
			}
		}
		delete(m, least.Question)
	}
	m[question] = &kommbridge.Gap{Question: question, Count: 1, Last: now}
	return nil
}

// Gaps returns base's n most asked unanswered questions, most asked
// first.
func (s *Store) Gaps(_ context.Context, base string, n int) ([]kommbridge.Gap, error) {
	g := &s.gaps
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []kommbridge.Gap
	for _, e := range g.byBase[base] {
		out = append(out, *e)
	}
	slices.SortFunc(out, kommbridge.MostAsked)
	return out[:min(n, len(out))], nil
}
