package memory

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// dedupe remembers answers by message key. A full store holds up to the
// cap's records for the TTL, and every garbage collection marks them, so
// they are laid out for it: a record is one buffer (key and answer), in a
// ring oldest first, found through a map of hashes to numbers that holds
// no pointers. The collector follows one pointer per record and scans
// nothing inside it. Claims being answered, a few, are apart.
type dedupe struct {
	mu     sync.Mutex
	ttl    time.Duration
	max    int
	now    func() time.Time
	seed   maphash.Seed
	claims map[string]*claim
	index  map[uint64]uint64 // a key's hash -> its record's number
	ring   []record          // grown by doubling up to max, then reused
	head   int               // where the oldest record is
	count  int               // records held
	first  uint64            // the oldest record's number
}

// record is an answer remembered. All have the same TTL, so the oldest
// expires first.
type record struct {
	data    []byte // the key, then the answer
	keyLen  int
	hash    uint64
	expires int64 // Unix nanoseconds
}

func (r *record) key() string    { return string(r.data[:r.keyLen]) }
func (r *record) answer() []byte { return r.data[r.keyLen:len(r.data):len(r.data)] }

// claim is a key being answered; done is closed when it is answered
// (answer set) or released (answer nil).
type claim struct {
	done    chan struct{}
	answer  []byte
	expires time.Time
}

func (d *dedupe) init(o Options, seed maphash.Seed) {
	d.ttl, d.now, d.max, d.seed = o.DedupeTTL, o.Now, o.MaxDedupe, seed
	if d.max == 0 {
		d.max = 100_000
	}
	d.claims = make(map[string]*claim)
	d.index = make(map[uint64]uint64)
}

// at is the record numbered first+i.
func (d *dedupe) at(i int) *record { return &d.ring[(d.head+i)%len(d.ring)] }

// dropOldest forgets the oldest record.
func (d *dedupe) dropOldest() {
	r := d.at(0)
	if n, ok := d.index[r.hash]; ok && n == d.first {
		delete(d.index, r.hash)
	}
	*r = record{}
	d.head = (d.head + 1) % len(d.ring)
	d.count--
	d.first++
}

// push adds r as the newest record, the oldest going first at the cap.
func (d *dedupe) push(r record) {
	if d.count == d.max {
		d.dropOldest()
	}
	if d.count == len(d.ring) {
		grown := make([]record, min(max(2*len(d.ring), 64), d.max))
		for i := range d.count {
			grown[i] = *d.at(i)
		}
		d.ring, d.head = grown, 0
	}
	d.index[r.hash] = d.first + uint64(d.count)
	*d.at(d.count) = r
	d.count++
}

// lookup is key's remembered answer, if any. d.mu must be held.
func (d *dedupe) lookup(key string, h uint64) ([]byte, bool) {
	n, ok := d.index[h]
	if !ok || n < d.first || n-d.first >= uint64(d.count) {
		return nil, false
	}
	r := d.at(int(n - d.first))
	if r.keyLen != len(key) || r.key() != key {
		return nil, false // another key with the same hash
	}
	return r.answer(), true
}

// DedupeLen counts the answers and claims remembered.
func (s *Store) DedupeLen() int {
	s.dedupe.mu.Lock()
	defer s.dedupe.mu.Unlock()
	return s.dedupe.count + len(s.dedupe.claims)
}

// Claim asks for the right to answer key. It returns the stored answer
// when key was answered already, waiting for one in flight; otherwise
// claimed is true and the caller must call Finish or Release. The answer
// returned is the store's: read it, do not change it.
func (s *Store) Claim(ctx context.Context, key string) (answer []byte, claimed bool, err error) {
	d := &s.dedupe
	h := maphash.String(d.seed, key)
	for {
		d.mu.Lock()
		now := d.now()
		for d.count > 0 && now.UnixNano() > d.at(0).expires {
			d.dropOldest()
		}
		if a, ok := d.lookup(key, h); ok {
			d.mu.Unlock()
			return a, false, nil
		}
		c, ok := d.claims[key]
		if ok && now.After(c.expires) {
			// A claim never finished nor released in a whole TTL: its
			// answerer is gone; this caller answers.
			close(c.done)
			ok = false
		}
		if !ok {
			d.claims[key] = &claim{done: make(chan struct{}), expires: now.Add(d.ttl)}
			d.mu.Unlock()
			return nil, true, nil
		}
		d.mu.Unlock()
		select {
		case <-c.done:
			if c.answer != nil {
				return c.answer, false, nil
			}
			// Released without an answer: try to claim it ourselves.
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// Finish stores the answer to a claimed key and wakes its waiters. Past
// the cap the oldest records go.
func (s *Store) Finish(_ context.Context, key string, answer []byte) error {
	d := &s.dedupe
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.claims[key]
	if !ok {
		return nil
	}
	delete(d.claims, key)
	data := make([]byte, 0, len(key)+len(answer))
	data = append(append(data, key...), answer...)
	d.push(record{data: data, keyLen: len(key), hash: maphash.String(d.seed, key), expires: d.now().Add(d.ttl).UnixNano()})
	c.answer = d.at(d.count - 1).answer()
	close(c.done)
	return nil
}

// Release gives up a claim without an answer; a waiter may claim it next.
func (s *Store) Release(_ context.Context, key string) {
	d := &s.dedupe
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.claims[key]; ok {
		delete(d.claims, key)
		close(c.done)
	}
}
