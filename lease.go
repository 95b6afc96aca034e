package kommbridge

import (
	"sync"
	"time"
)

// Renewing calls renew every interval, on a goroutine of its own, until
// renew returns false or stop is called; stop waits for that goroutine.
// It keeps a lease alive while its owner works: a conversation's lock, a
// dedupe claim, a held answer.
func Renewing(every time.Duration, renew func() bool) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if !renew() {
					return
				}
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-stopped }) }
}
