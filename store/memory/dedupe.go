package memory

import (
	"container/list"
	"context"
	"sync"
	"time"
)

type dedupe struct {
	mu    sync.Mutex
	ttl   time.Duration
	max   int
	now   func() time.Time
	byKey map[string]*flight
	order list.List // of *flight, oldest first; same TTL for all, so FIFO expiry
}

type flight struct {
	key     string
	done    chan struct{} // closed when answered or released
	answer  []byte
	expires time.Time
	el      *list.Element
}

func (d *dedupe) init(o Options) {
	d.ttl, d.now, d.max = o.DedupeTTL, o.Now, o.MaxDedupe
	if d.max == 0 {
		d.max = 100_000
	}
	d.byKey = make(map[string]*flight)
}

// evict drops the oldest records past the count cap. A claim still being
// answered is never dropped: the cap waits for it.
func (d *dedupe) evict() {
	for d.order.Len() > d.max {
		el := d.order.Front()
		f := el.Value.(*flight)
		if f.answer == nil {
			return
		}
		d.order.Remove(el)
		if d.byKey[f.key] == f {
			delete(d.byKey, f.key)
		}
	}
}

// DedupeLen counts the answers and claims remembered.
func (s *Store) DedupeLen() int {
	s.dedupe.mu.Lock()
	defer s.dedupe.mu.Unlock()
	return len(s.dedupe.byKey)
}

// Claim asks for the right to answer key. It returns the stored answer
// when key was answered already, waiting for one in flight; otherwise
// claimed is true and the caller must call Finish or Release.
func (s *Store) Claim(ctx context.Context, key string) (answer []byte, claimed bool, err error) {
	d := &s.dedupe
	for {
		d.mu.Lock()
		now := d.now()
		for el := d.order.Front(); el != nil; el = d.order.Front() {
			f := el.Value.(*flight)
			if !now.After(f.expires) {
				break
			}
			d.order.Remove(el)
			if d.byKey[f.key] == f {
				delete(d.byKey, f.key)
			}
		}
		f, ok := d.byKey[key]
		if !ok {
			f = &flight{key: key, done: make(chan struct{}), expires: now.Add(d.ttl)}
			f.el = d.order.PushBack(f)
			d.byKey[key] = f
			d.evict()
			d.mu.Unlock()
			return nil, true, nil
		}
		d.mu.Unlock()
		select {
		case <-f.done:
			if f.answer != nil {
				return f.answer, false, nil
			}
			// Released without an answer: try to claim it ourselves.
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// Finish stores the answer to a claimed key and wakes its waiters.
func (s *Store) Finish(_ context.Context, key string, answer []byte) error {
	d := &s.dedupe
	d.mu.Lock()
	defer d.mu.Unlock()
	if f, ok := d.byKey[key]; ok && f.answer == nil {
		f.answer = answer
		f.expires = d.now().Add(d.ttl)
		d.order.MoveToBack(f.el)
		close(f.done)
		d.evict()
	}
	return nil
}

// Release gives up a claim without an answer; a waiter may claim it next.
func (s *Store) Release(_ context.Context, key string) {
	d := &s.dedupe
	d.mu.Lock()
	defer d.mu.Unlock()
	if f, ok := d.byKey[key]; ok && f.answer == nil {
		delete(d.byKey, key)
		d.order.Remove(f.el)
		close(f.done)
	}
}
