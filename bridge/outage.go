package bridge

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
)

// guarded is the shared store with a local stand-in for its outages
// (store.on_outage: degrade). While the shared store fails, events are
// answered from the local one: no stored history, dedupe and order kept
// within this process. After a failure the shared store is left alone for
// retryAfter, so an outage costs each event no more than one timeout.
type guarded struct {
	shared, local Store
	retryAfter    time.Duration
	now           func() time.Time
	log           *zap.Logger
	onChange      func(down bool)

	skipUntil atomic.Int64 // unix ns: use local until then
	lastLocal atomic.Int64 // unix ns of the last call the local store served
	down      atomic.Bool  // in an outage: logged once at each end
}

// outageRetry is how long a failed shared store is skipped before it is
// tried again: longer than one failing call takes (about 2 s against a
// stalled Redis: a 1 s read timeout and one retry), so that an event pays
// for at most one failing call, not one per store operation.
const outageRetry = 5 * time.Second

func newGuarded(shared, local Store, now func() time.Time, log *zap.Logger, onChange func(bool)) *guarded {
	if onChange == nil {
		onChange = func(bool) {}
	}
	return &guarded{shared: shared, local: local, retryAfter: outageRetry, now: now, log: log, onChange: onChange}
}

// through runs f on the shared store, or on the local one while the shared
// one is out: skipped after a recent failure, or failing now. A failure
// that is the caller's own deadline is returned as it is.
func through[T any](ctx context.Context, g *guarded, f func(Store) (T, error)) (T, error) {
	if g.now().UnixNano() >= g.skipUntil.Load() {
		v, err := f(g.shared)
		if err == nil {
			g.up()
			return v, nil
		}
		if ctx.Err() != nil {
			return v, err
		}
		g.fail(err)
	}
	g.lastLocal.Store(g.now().UnixNano())
	return f(g.local)
}

func (g *guarded) fail(err error) {
	g.skipUntil.Store(g.now().Add(g.retryAfter).UnixNano())
	if g.down.CompareAndSwap(false, true) {
		g.log.Warn("store unreachable: answering without stored history until it is back (store.on_outage: degrade)", zap.Error(err))
		g.onChange(true)
	}
}

func (g *guarded) up() {
	if g.down.CompareAndSwap(true, false) {
		g.log.Info("store reachable again")
		g.onChange(false)
	}
}

// usedLocalSince reports whether the local store served a call since t.
func (g *guarded) usedLocalSince(t time.Time) bool { return g.lastLocal.Load() >= t.UnixNano() }

// skipping reports whether the shared store is being left alone now.
func (g *guarded) skipping() bool { return g.now().UnixNano() < g.skipUntil.Load() }

func (g *guarded) History(ctx context.Context, conv string) ([]kommbridge.Turn, error) {
	return through(ctx, g, func(s Store) ([]kommbridge.Turn, error) { return s.History(ctx, conv) })
}

func (g *guarded) Append(ctx context.Context, conv string, turns ...kommbridge.Turn) error {
	_, err := through(ctx, g, func(s Store) (struct{}, error) { return struct{}{}, s.Append(ctx, conv, turns...) })
	return err
}

func (g *guarded) Reset(ctx context.Context, conv string, turns ...kommbridge.Turn) error {
	_, err := through(ctx, g, func(s Store) (struct{}, error) { return struct{}{}, s.Reset(ctx, conv, turns...) })
	return err
}

func (g *guarded) Trim(ctx context.Context, conv string, keep int) error {
	_, err := through(ctx, g, func(s Store) (struct{}, error) { return struct{}{}, s.Trim(ctx, conv, keep) })
	return err
}

func (g *guarded) MarkHandoff(ctx context.Context, conv string, at time.Time) error {
	_, err := through(ctx, g, func(s Store) (struct{}, error) { return struct{}{}, s.MarkHandoff(ctx, conv, at) })
	return err
}

func (g *guarded) HandoffAt(ctx context.Context, conv string) (time.Time, error) {
	return through(ctx, g, func(s Store) (time.Time, error) { return s.HandoffAt(ctx, conv) })
}

func (g *guarded) Lock(ctx context.Context, conv string) (kommbridge.Lock, error) {
	return through(ctx, g, func(s Store) (kommbridge.Lock, error) { return s.Lock(ctx, conv) })
}

func (g *guarded) Claim(ctx context.Context, key string) ([]byte, bool, error) {
	type claim struct {
		answer  []byte
		claimed bool
	}
	c, err := through(ctx, g, func(s Store) (claim, error) {
		a, ok, err := s.Claim(ctx, key)
		return claim{a, ok}, err
	})
	return c.answer, c.claimed, err
}

// Finish and Release also tell the local store, which may hold the claim
// if the outage began or ended since it was made; for a key it does not
// hold, they do nothing.
func (g *guarded) Finish(ctx context.Context, key string, answer []byte) error {
	g.local.Finish(ctx, key, answer)
	_, err := through(ctx, g, func(s Store) (struct{}, error) { return struct{}{}, s.Finish(ctx, key, answer) })
	return err
}

func (g *guarded) Release(ctx context.Context, key string) {
	g.local.Release(ctx, key)
	if !g.skipping() {
		g.shared.Release(ctx, key)
	}
}

func (g *guarded) Queue(ctx context.Context, conv, key, text string) error {
	_, err := through(ctx, g, func(s Store) (struct{}, error) { return struct{}{}, s.Queue(ctx, conv, key, text) })
	return err
}

func (g *guarded) Dequeue(ctx context.Context, conv, key string) ([]string, kommbridge.Queued, error) {
	type dq struct {
		texts []string
		q     kommbridge.Queued
	}
	v, err := through(ctx, g, func(s Store) (dq, error) {
		t, q, err := s.Dequeue(ctx, conv, key)
		return dq{t, q}, err
	})
	return v.texts, v.q, err
}
