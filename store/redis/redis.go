// Package redis is the store several kommbridge replicas share: history,
// handed-off marks, dedupe records with in-flight waits across replicas,
// per-conversation locks with a lease, and rate limits (GCRA in a Lua
// script), all in Redis. Every write is acknowledged by Redis before the
// webhook answers, so a replica killed at any point loses nothing it had
// answered. go-redis reconnects by itself when Redis comes back.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
)

// Options size the store. Zero values take the defaults in brackets.
type Options struct {
	HistoryTurns int           // [20]
	HistoryTTL   time.Duration // [24h]
	DedupeTTL    time.Duration // [10m]
	// Lease is how long a lock or an in-flight claim outlives its owner
	// [5s]: the owner renews it every Lease/3 while it works, so a replica
	// that dies frees what it held within one Lease.
	Lease time.Duration
	// OnLeaseLost, when set, hears of each lease whose renewal failed
	// ("lock" or "claim"); the owner is then told by Lock.Lost.
	OnLeaseLost func(kind string, err error)
	// Prefix starts every key ["kommbridge:"].
	Prefix string
}

// Store is the Redis store. It is safe for concurrent use.
type Store struct {
	c    *goredis.Client
	o    Options
	poll time.Duration

	mu     sync.Mutex
	claims map[string]func() // renewals of this replica's in-flight claims, by key
}

// New connects to url (redis://[:password@]host:port/db or rediss://).
// It does not wait for Redis to be up; Ping tells.
func New(url string, o Options) (*Store, error) {
	opt, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	opt.DialTimeout = time.Second
	opt.ReadTimeout = time.Second
	opt.WriteTimeout = time.Second
	opt.MaxRetries = 1
	if o.HistoryTurns == 0 {
		o.HistoryTurns = 20
	}
	if o.HistoryTTL == 0 {
		o.HistoryTTL = 24 * time.Hour
	}
	if o.DedupeTTL == 0 {
		o.DedupeTTL = 10 * time.Minute
	}
	if o.Lease == 0 {
		o.Lease = 5 * time.Second
	}
	if o.OnLeaseLost == nil {
		o.OnLeaseLost = func(string, error) {}
	}
	if o.Prefix == "" {
		o.Prefix = "kommbridge:"
	}
	return &Store{c: goredis.NewClient(opt), o: o, poll: 10 * time.Millisecond, claims: map[string]func(){}}, nil
}

func (s *Store) key(kind, id string) string { return s.o.Prefix + kind + ":" + id }

// History returns the conversation's turns, oldest first, and extends its TTL.
func (s *Store) History(ctx context.Context, conv string) ([]kommbridge.Turn, error) {
	k := s.key("h", conv)
	var lr *goredis.StringSliceCmd
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		lr = p.LRange(ctx, k, 0, -1)
		p.PExpire(ctx, k, s.o.HistoryTTL)
		p.PExpire(ctx, s.key("ho", conv), s.o.HistoryTTL)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: history: %w", err)
	}
	items := lr.Val()
	if len(items) == 0 {
		return nil, nil
	}
	out := make([]kommbridge.Turn, 0, len(items))
	for _, it := range items {
		var t kommbridge.Turn
		if json.Unmarshal([]byte(it), &t) == nil {
			out = append(out, t)
		}
	}
	return out, nil
}

func encodeTurns(turns []kommbridge.Turn) []any {
	out := make([]any, len(turns))
	for i, t := range turns {
		b, _ := json.Marshal(t)
		out[i] = b
	}
	return out
}

// Append adds turns, keeping the last HistoryTurns.
func (s *Store) Append(ctx context.Context, conv string, turns ...kommbridge.Turn) error {
	if len(turns) == 0 {
		return nil
	}
	k := s.key("h", conv)
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.RPush(ctx, k, encodeTurns(turns)...)
		p.LTrim(ctx, k, int64(-s.o.HistoryTurns), -1)
		p.PExpire(ctx, k, s.o.HistoryTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: append: %w", err)
	}
	return nil
}

// Trim keeps the last keep turns of the history, the handed-off mark
// untouched.
func (s *Store) Trim(ctx context.Context, conv string, keep int) error {
	k := s.key("h", conv)
	var err error
	if keep <= 0 {
		err = s.c.Del(ctx, k).Err()
	} else {
		err = s.c.LTrim(ctx, k, int64(-keep), -1).Err()
	}
	if err != nil {
		return fmt.Errorf("store: trim: %w", err)
	}
	return nil
}

// Reset replaces the history with turns and clears the handed-off mark.
func (s *Store) Reset(ctx context.Context, conv string, turns ...kommbridge.Turn) error {
	k := s.key("h", conv)
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Del(ctx, k, s.key("ho", conv))
		if len(turns) > 0 {
			p.RPush(ctx, k, encodeTurns(turns)...)
			p.LTrim(ctx, k, int64(-s.o.HistoryTurns), -1)
			p.PExpire(ctx, k, s.o.HistoryTTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: reset: %w", err)
	}
	return nil
}

// MarkHandoff records when the conversation was handed to people.
func (s *Store) MarkHandoff(ctx context.Context, conv string, at time.Time) error {
	if err := s.c.Set(ctx, s.key("ho", conv), at.UnixNano(), s.o.HistoryTTL).Err(); err != nil {
		return fmt.Errorf("store: mark handoff: %w", err)
	}
	return nil
}

// HandoffAt returns when the conversation was last handed off; zero if never.
func (s *Store) HandoffAt(ctx context.Context, conv string) (time.Time, error) {
	v, err := s.c.Get(ctx, s.key("ho", conv)).Int64()
	if errors.Is(err, goredis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: handoff mark: %w", err)
	}
	return time.Unix(0, v), nil
}

var (
	unlockScript = goredis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
	extendScript = goredis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
)

// Lock takes the conversation's lock, shared by every replica, waiting
// while ctx allows. The lock is a lease of Options.Lease, renewed while it
// is held (an answer delivered later can hold it for minutes); a replica
// that dies holding it, or fails to unlock it, frees it within one lease.
func (s *Store) Lock(ctx context.Context, conv string) (kommbridge.Lock, error) {
	k, token := s.key("lk", conv), newToken()
	wait := s.poll
	for {
		ok, err := s.c.SetNX(ctx, k, token, s.o.Lease).Result()
		if err != nil {
			return nil, fmt.Errorf("store: lock: %w", err)
		}
		if ok {
			break
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		wait = min(wait*2, 100*time.Millisecond)
	}
	l := &lease{}
	stop := s.renew("lock", k, token, &l.lost)
	l.unlock = func() {
		stop()
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := unlockScript.Run(uctx, s.c, []string{k}, token).Err(); err != nil {
			// Left to its lease: the conversation waits at most that long.
			s.o.OnLeaseLost("lock", fmt.Errorf("unlock: %w", err))
		}
	}
	return l, nil
}

// lease is a held Redis lock.
type lease struct {
	once   sync.Once
	lost   atomic.Bool
	unlock func()
}

func (l *lease) Lost() bool { return l.lost.Load() }
func (l *lease) Unlock()    { l.once.Do(l.unlock) }

// renew extends key's lease every Lease/3 while it still holds value;
// the func stops it. A renewal that fails, or finds the key no longer
// ours, sets lost and ends the renewals: the lease is left to run out.
func (s *Store) renew(kind, key, value string, lost *atomic.Bool) func() {
	return kommbridge.Renewing(s.o.Lease/3, func() bool {
		rctx, cancel := context.WithTimeout(context.Background(), s.o.Lease/3)
		defer cancel()
		n, err := extendScript.Run(rctx, s.c, []string{key}, value, s.o.Lease.Milliseconds()).Int()
		if err == nil && n == 0 {
			err = errors.New("held by another owner")
		}
		if err != nil {
			lost.Store(true)
			s.o.OnLeaseLost(kind, err)
			return false
		}
		return true
	})
}

const pending = "\x00pending:"

// Claim asks for the right to answer key, across replicas: the stored
// answer if there is one (waiting for one in flight anywhere), or claimed
// true, after which the caller must Finish or Release.
func (s *Store) Claim(ctx context.Context, key string) ([]byte, bool, error) {
	k := s.key("d", key)
	wait := s.poll
	for {
		token := pending + newToken()
		ok, err := s.c.SetNX(ctx, k, token, s.o.Lease).Result()
		if err != nil {
			return nil, false, fmt.Errorf("store: claim: %w", err)
		}
		if ok {
			var lost atomic.Bool
			stop := s.renew("claim", k, token, &lost)
			s.mu.Lock()
			s.claims[key] = stop
			s.mu.Unlock()
			return nil, true, nil
		}
		v, err := s.c.Get(ctx, k).Bytes()
		switch {
		case errors.Is(err, goredis.Nil):
			continue // released or expired just now: claim again
		case err != nil:
			return nil, false, fmt.Errorf("store: claim: %w", err)
		case len(v) < len(pending) || string(v[:len(pending)]) != pending:
			return v, false, nil
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, false, err
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}

// stopClaim ends the renewals of this replica's claim on key.
func (s *Store) stopClaim(key string) {
	s.mu.Lock()
	stop := s.claims[key]
	delete(s.claims, key)
	s.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Finish stores the answer to a claimed key for DedupeTTL.
func (s *Store) Finish(ctx context.Context, key string, answer []byte) error {
	s.stopClaim(key)
	if err := s.c.Set(ctx, s.key("d", key), answer, s.o.DedupeTTL).Err(); err != nil {
		return fmt.Errorf("store: finish: %w", err)
	}
	return nil
}

var releaseScript = goredis.NewScript(`local v = redis.call("GET", KEYS[1]) if v and string.sub(v, 1, string.len(ARGV[1])) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Release gives up a claim without an answer; a waiter may claim it next.
func (s *Store) Release(ctx context.Context, key string) {
	s.stopClaim(key)
	if err := releaseScript.Run(ctx, s.c, []string{s.key("d", key)}, pending).Err(); err != nil {
		// Left to its lease: a retry of the key waits at most that long.
		s.o.OnLeaseLost("claim", fmt.Errorf("release: %w", err))
	}
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Close closes the connections.
func (s *Store) Close() error { return s.c.Close() }

func newToken() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetLogger sends go-redis's own messages (reconnects, pool errors) to
// log instead of plain lines on stderr. It is process-wide.
func SetLogger(log *zap.Logger) { goredis.SetLogger(zapPrinter{log}) }

type zapPrinter struct{ log *zap.Logger }

func (p zapPrinter) Printf(_ context.Context, format string, v ...any) {
	p.log.Warn(fmt.Sprintf(format, v...))
}
