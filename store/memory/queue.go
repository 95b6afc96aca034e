package memory

import (
	"context"
	"time"

	"github.com/kommbridge/kommbridge"
)

// queueTTL is how long a queued message is remembered: longer than any
// wait for a lock (a held answer may wait minutes).
const queueTTL = 10 * time.Minute

// queued is a message waiting for its conversation's lock.
type queued struct {
	key, text string
	at        time.Time
}

// Queue records that message key of conv waits for the conversation's
// lock.
func (s *Store) Queue(_ context.Context, conv, key, text string) error {
	sh := s.shard(conv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := s.opts.Now()
	sh.queues[conv] = append(fresh(sh.queues[conv], now), queued{key: key, text: text, at: now})
	return nil
}

// Dequeue, with conv's lock held: when key is the newest message queued,
// it takes the texts queued up to it, oldest first (Answer); when a newer
// one waits, it takes nothing (Joined: that one answers it); when key is
// not queued, it was taken by a newer message (Joined) or never queued
// here (Alone).
func (s *Store) Dequeue(_ context.Context, conv, key string) ([]string, kommbridge.Queued, error) {
	sh := s.shard(conv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := s.opts.Now()
	q := fresh(sh.queues[conv], now)
	at := -1
	for i, e := range q {
		if e.key == key {
			at = i
		}
	}
	switch {
	case at < 0:
		sh.setQueue(conv, q)
		if t, ok := sh.taken[key]; ok && now.Sub(t) < queueTTL {
			delete(sh.taken, key)
			return nil, kommbridge.Joined, nil
		}
		return nil, kommbridge.Alone, nil
	case at < len(q)-1:
		sh.setQueue(conv, q)
		return nil, kommbridge.Joined, nil
	}
	texts := make([]string, len(q))
	for i, e := range q {
		texts[i] = e.text
		if e.key != key {
			sh.taken[e.key] = now
		}
	}
	delete(sh.queues, conv)
	for k, t := range sh.taken {
		if now.Sub(t) >= queueTTL {
			delete(sh.taken, k)
		}
	}
	return texts, kommbridge.Answer, nil
}

func (sh *shard) setQueue(conv string, q []queued) {
	if len(q) == 0 {
		delete(sh.queues, conv)
		return
	}
	sh.queues[conv] = q
}

// fresh is q without the messages queued longer than queueTTL ago.
func fresh(q []queued, now time.Time) []queued {
	for len(q) > 0 && now.Sub(q[0].at) >= queueTTL {
		q = q[1:]
	}
	return q
}
