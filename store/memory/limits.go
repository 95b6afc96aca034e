package memory

import (
	"container/list"
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/kommbridge/kommbridge"
)

// LimitOptions configure a Limiter.
type LimitOptions struct {
	Conversation, User, Global kommbridge.Rate
	// MaxKeys bounds the conversations and users tracked [100000]; an idle
	// one (its bucket full again) is dropped first, which loses nothing.
	MaxKeys int
	Now     func() time.Time
}

// Limiter applies per-conversation, per-user and global rate limits in
// process, with golang.org/x/time/rate.
type Limiter struct {
	conv, user *keyed
	global     *rate.Limiter
	now        func() time.Time
}

// NewLimiter returns a Limiter for o.
func NewLimiter(o LimitOptions) *Limiter {
	if o.MaxKeys == 0 {
		o.MaxKeys = 100_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Limiter{conv: newKeyed(o.Conversation, o.MaxKeys), user: newKeyed(o.User, o.MaxKeys), now: o.Now}
	if o.Global.Per > 0 {
		l.global = rate.NewLimiter(rate.Limit(o.Global.Per), o.Global.Burst)
	}
	return l
}

// Allow reports whether one more event of conv by user may go on now. An
// event refused by any limit uses up none of the others, as in the Redis
// store: it takes a token from every bucket or from none.
func (l *Limiter) Allow(_ context.Context, conv, user string) (bool, error) {
	now := l.now()
	var taken []*rate.Reservation
	take := func(lim *rate.Limiter) bool {
		if lim == nil {
			return true
		}
		r := lim.ReserveN(now, 1)
		if !r.OK() || r.DelayFrom(now) > 0 {
			r.CancelAt(now)
			return false
		}
		taken = append(taken, r)
		return true
	}
	if take(l.conv.limiter(conv, now)) && take(l.user.limiter(user, now)) && take(l.global) {
		return true, nil
	}
	for _, r := range taken {
		r.CancelAt(now)
	}
	return false, nil
}

// keyed is a bounded set of token buckets, least recently used last.
type keyed struct {
	r     kommbridge.Rate
	full  time.Duration // how long an unused bucket takes to refill
	max   int
	mu    sync.Mutex
	lru   list.List // of *bucket
	byKey map[string]*list.Element
}

type bucket struct {
	key  string
	lim  *rate.Limiter
	last time.Time
}

func newKeyed(r kommbridge.Rate, max int) *keyed {
	k := &keyed{r: r, max: max, byKey: make(map[string]*list.Element)}
	if r.Per > 0 {
		k.full = time.Duration(float64(r.Burst) / r.Per * float64(time.Second))
	}
	return k
}

// limiter is key's bucket, nil when this limit is off.
func (k *keyed) limiter(key string, now time.Time) *rate.Limiter {
	if k.r.Per <= 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	el, ok := k.byKey[key]
	if !ok {
		for back := k.lru.Back(); back != nil; back = k.lru.Back() {
			b := back.Value.(*bucket)
			if k.lru.Len() < k.max && now.Sub(b.last) < k.full {
				break
			}
			k.lru.Remove(back)
			delete(k.byKey, b.key)
		}
		el = k.lru.PushFront(&bucket{key: key, lim: rate.NewLimiter(rate.Limit(k.r.Per), k.r.Burst)})
		k.byKey[key] = el
	} else {
		k.lru.MoveToFront(el)
	}
	b := el.Value.(*bucket)
	b.last = now
	return b.lim
}

// Len counts the tracked keys, conversations and users together.
func (l *Limiter) Len() int {
	l.conv.mu.Lock()
	n := l.conv.lru.Len()
	l.conv.mu.Unlock()
	l.user.mu.Lock()
	defer l.user.mu.Unlock()
	return n + l.user.lru.Len()
}
