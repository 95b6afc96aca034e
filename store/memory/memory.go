// Package memory is the in-process store: history in a sharded LRU with a
// sliding TTL and a cap on conversations (least recently used goes first,
// in O(1)), dedupe records with in-flight waits, and per-conversation locks.
// Nothing runs in the background; expired entries go as new ones arrive.
package memory

import (
	"container/list"
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/kommbridge/kommbridge"
)

const shards = 64

// Options size the store. Zero values take the defaults in brackets.
type Options struct {
	HistoryTurns     int           // turns kept per conversation [20]
	HistoryTTL       time.Duration // idle time before a conversation is forgotten [24h]
	MaxConversations int           // conversations held at most [100000]
	DedupeTTL        time.Duration // how long an answer is remembered [10m]
	// MaxDedupe bounds the answers remembered [100000]: past it the oldest
	// go first, so sustained traffic cannot grow memory without limit.
	MaxDedupe int
	Now       func() time.Time
}

// Store is the memory store. It is safe for concurrent use.
type Store struct {
	opts     Options
	seed     maphash.Seed
	shards   [shards]shard
	dedupe   dedupe
	gaps     gaps
	outcomes outcomes
}

type shard struct {
	mu    sync.Mutex
	lru   list.List // of *conversation, front = most recent
	byKey map[string]*list.Element
	cap   int
	locks map[string]*convLock
	// queues are the messages waiting for each conversation's lock;
	// taken, the keys a newer message took from a queue, and when.
	queues map[string][]queued
	taken  map[string]time.Time
}

type conversation struct {
	key       string
	turns     history
	handoffAt time.Time
	expires   time.Time
}

// New returns an empty store.
func New(o Options) *Store {
	if o.HistoryTurns == 0 {
		o.HistoryTurns = 20
	}
	if o.HistoryTTL == 0 {
		o.HistoryTTL = 24 * time.Hour
	}
	if o.MaxConversations == 0 {
		o.MaxConversations = 100_000
	}
	if o.DedupeTTL == 0 {
		o.DedupeTTL = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Store{opts: o, seed: maphash.MakeSeed()}
	// The cap is split over the shards exactly (at least one each).
	for i := range s.shards {
		s.shards[i].byKey = make(map[string]*list.Element)
		s.shards[i].locks = make(map[string]*convLock)
		s.shards[i].queues = make(map[string][]queued)
		s.shards[i].taken = make(map[string]time.Time)
		s.shards[i].cap = o.MaxConversations / shards
		if i < o.MaxConversations%shards {
			s.shards[i].cap++
		}
		s.shards[i].cap = max(1, s.shards[i].cap)
	}
	s.dedupe.init(o, s.seed)
	return s
}

func (s *Store) shard(key string) *shard {
	return &s.shards[maphash.String(s.seed, key)%shards]
}

// get returns the live conversation for key, touching it; nil if none.
// The shard's lock must be held.
func (sh *shard) get(key string, now time.Time, ttl time.Duration) *conversation {
	el, ok := sh.byKey[key]
	if !ok {
		return nil
	}
	c := el.Value.(*conversation)
	if now.After(c.expires) {
		sh.lru.Remove(el)
		delete(sh.byKey, key)
		return nil
	}
	c.expires = now.Add(ttl)
	sh.lru.MoveToFront(el)
	return c
}

// put returns the conversation for key, creating it (and evicting the
// least recently used or expired ones) when needed.
func (sh *shard) put(key string, now time.Time, ttl time.Duration) *conversation {
	if c := sh.get(key, now, ttl); c != nil {
		return c
	}
	// The back of the list is the least recently touched, and so the
	// first to expire: drop expired ones, then enough to fit the cap.
	for el := sh.lru.Back(); el != nil; el = sh.lru.Back() {
		c := el.Value.(*conversation)
		if sh.lru.Len() < sh.cap && !now.After(c.expires) {
			break
		}
		sh.lru.Remove(el)
		delete(sh.byKey, c.key)
	}
	c := &conversation{key: key, expires: now.Add(ttl)}
	sh.byKey[key] = sh.lru.PushFront(c)
	return c
}

// History returns a copy of the conversation's turns, oldest first.
func (s *Store) History(_ context.Context, conv string) ([]kommbridge.Turn, error) {
	sh := s.shard(conv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.get(conv, s.opts.Now(), s.opts.HistoryTTL)
	if c == nil || c.turns.n == 0 {
		return nil, nil
	}
	return c.turns.list(), nil
}

// Append adds turns to the conversation, keeping the last HistoryTurns.
func (s *Store) Append(_ context.Context, conv string, turns ...kommbridge.Turn) error {
	sh := s.shard(conv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.put(conv, s.opts.Now(), s.opts.HistoryTTL)
	c.turns.add(turns...)
	c.turns.keep(s.opts.HistoryTurns)
	return nil
}

// Trim keeps the conversation's last keep turns, its handed-off mark
// untouched.
func (s *Store) Trim(_ context.Context, conv string, keep int) error {
	sh := s.shard(conv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c := sh.get(conv, s.opts.Now(), s.opts.HistoryTTL); c != nil {
		c.turns.keep(max(keep, 0))
	}
	return nil
}

// Reset replaces the conversation's history with turns and clears its
// handed-off mark: a new conversation starts.
func (s *Store) Reset(_ context.Context, conv string, turns ...kommbridge.Turn) error {
	sh := s.shard(conv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.put(conv, s.opts.Now(), s.opts.HistoryTTL)
	c.turns = history{}
	c.turns.add(turns...)
	c.turns.keep(s.opts.HistoryTurns)
	c.handoffAt = time.Time{}
	return nil
}

// MarkHandoff records that the conversation was handed to people at at.
func (s *Store) MarkHandoff(_ context.Context, conv string, at time.Time) error {
	sh := s.shard(conv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.put(conv, s.opts.Now(), s.opts.HistoryTTL).handoffAt = at
	return nil
}

// HandoffAt returns when the conversation was last handed off; zero if never.
func (s *Store) HandoffAt(_ context.Context, conv string) (time.Time, error) {
	sh := s.shard(conv)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if c := sh.get(conv, s.opts.Now(), s.opts.HistoryTTL); c != nil {
		return c.handoffAt, nil
	}
	return time.Time{}, nil
}

// Len counts the conversations held.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
		n += s.shards[i].lru.Len()
		s.shards[i].mu.Unlock()
	}
	return n
}

type convLock struct {
	ch   chan struct{} // holds one token while locked
	refs int           // holders and waiters
}

// convLocks keeps the locks of conversations no one holds or waits for
// (their channels empty) for the next ones.
var convLocks = sync.Pool{New: func() any { return &convLock{ch: make(chan struct{}, 1)} }}

// heldLock is a memory lock: it is never lost.
type heldLock struct {
	once sync.Once
	sh   *shard
	l    *convLock
	conv string
}

func (h *heldLock) Lost() bool { return false }
func (h *heldLock) Unlock() {
	h.once.Do(func() {
		<-h.l.ch
		h.sh.release(h.l, h.conv)
	})
}

// release drops a holder's or a waiter's reference to conv's lock.
func (sh *shard) release(l *convLock, conv string) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if l.refs--; l.refs == 0 {
		delete(sh.locks, conv)
		convLocks.Put(l)
	}
}

// Lock serializes work on one conversation; it waits while ctx allows.
func (s *Store) Lock(ctx context.Context, conv string) (kommbridge.Lock, error) {
	sh := s.shard(conv)
	sh.mu.Lock()
	l, ok := sh.locks[conv]
	if !ok {
		l = convLocks.Get().(*convLock)
		sh.locks[conv] = l
	}
	l.refs++
	sh.mu.Unlock()
	select {
	case l.ch <- struct{}{}:
		return &heldLock{sh: sh, l: l, conv: conv}, nil
	case <-ctx.Done():
		sh.release(l, conv)
		return nil, ctx.Err()
	}
}

// Ping always succeeds.
func (s *Store) Ping(context.Context) error { return nil }

// Close does nothing; the store stays usable.
func (s *Store) Close() error { return nil }
