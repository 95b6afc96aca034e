package llm

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// errNotCounted is reported to the breaker for a call whose failure says
// nothing about the endpoint: the caller went away, the deadline had
// passed before the request was sent, or the endpoint refused our request
// (4xx), which retrying elsewhere cannot fix either.
var errNotCounted = errors.New("not the endpoint's fault")

// breaker skips an endpoint after threshold consecutive failed calls for
// cooldown, then lets one probe through at a time (half-open); the probe's
// success closes it. A call counts once, whatever its retries. It wraps
// gobreaker, adding one rule: a success of a call that started before the
// breaker opened proves the endpoint healthy too, and closes it.
type breaker struct {
	threshold uint32
	cooldown  time.Duration
	cb        atomic.Pointer[gobreaker.TwoStepCircuitBreaker[struct{}]]
}

func newBreaker(threshold int, cooldown time.Duration) *breaker {
	b := &breaker{threshold: uint32(max(threshold, 0)), cooldown: cooldown}
	if b.threshold > 0 {
		b.cb.Store(b.fresh())
	}
	return b
}

// fresh is a closed breaker.
func (b *breaker) fresh() *gobreaker.TwoStepCircuitBreaker[struct{}] {
	return gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		MaxRequests: 1,
		Timeout:     b.cooldown,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= b.threshold },
		IsExcluded:  func(err error) bool { return errors.Is(err, errNotCounted) },
	})
}

// allow asks to call the endpoint. ok false means skip it; otherwise done
// must be called once with the call's outcome: nil, errNotCounted, or the
// endpoint's failure.
func (b *breaker) allow() (done func(error), ok bool) {
	if b.threshold == 0 {
		return func(error) {}, true
	}
	cb := b.cb.Load()
	report, err := cb.Allow()
	if err != nil {
		return nil, false
	}
	return func(outcome error) {
		report(outcome)
		if outcome == nil && cb.State() == gobreaker.StateOpen {
			b.cb.CompareAndSwap(cb, b.fresh())
		}
	}, true
}

// bypass is allow for a call made in spite of the breaker (every endpoint
// is skipped): the outcome is not counted, but a success closes it.
func (b *breaker) bypass() func(error) {
	cb := b.cb.Load()
	return func(outcome error) {
		if outcome == nil && cb != nil {
			b.cb.CompareAndSwap(cb, b.fresh())
		}
	}
}

// open reports whether calls are being skipped (open, or half-open with
// its probe under way).
func (b *breaker) open() bool {
	if b.threshold == 0 {
		return false
	}
	return b.cb.Load().State() == gobreaker.StateOpen
}
