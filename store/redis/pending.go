package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// The durable queue of held answers: a sorted set of job ids scored by
// when their lease runs out, and each job's data under its own key.

// AddPending queues a held answer, leased to this replica for lease.
func (s *Store) AddPending(ctx context.Context, id string, job []byte, lease time.Duration) error {
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Set(ctx, s.key("job", id), job, time.Hour)
		p.ZAdd(ctx, s.key("pending", "all"), goredis.Z{Score: float64(time.Now().Add(lease).UnixMilli()), Member: id})
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: add pending: %w", err)
	}
	return nil
}

// RenewPending extends the lease of a queued answer.
func (s *Store) RenewPending(ctx context.Context, id string, lease time.Duration) error {
	err := s.c.ZAddXX(ctx, s.key("pending", "all"), goredis.Z{Score: float64(time.Now().Add(lease).UnixMilli()), Member: id}).Err()
	if err != nil {
		return fmt.Errorf("store: renew pending: %w", err)
	}
	return nil
}

// DonePending removes a delivered (or abandoned) answer from the queue.
func (s *Store) DonePending(ctx context.Context, id string) error {
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZRem(ctx, s.key("pending", "all"), id)
		p.Del(ctx, s.key("job", id))
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: done pending: %w", err)
	}
	return nil
}

// take leases out the first job whose lease ran out, atomically, so two
// replicas never take the same one.
var take = goredis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, 1)
if #ids == 0 then return false end
local id = ids[1]
local job = redis.call("GET", ARGV[2] .. id)
if not job then
  redis.call("ZREM", KEYS[1], id)
  return false
end
redis.call("ZADD", KEYS[1], now + tonumber(ARGV[1]), id)
return {id, job}`)

// TakePending returns a job whose lease ran out, leased anew; id is ""
// when there is none.
func (s *Store) TakePending(ctx context.Context, lease time.Duration) (string, []byte, error) {
	v, err := take.Run(ctx, s.c, []string{s.key("pending", "all")}, lease.Milliseconds(), s.o.Prefix+"job:").Slice()
	if errors.Is(err, goredis.Nil) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("store: take pending: %w", err)
	}
	if len(v) != 2 {
		return "", nil, nil
	}
	id, _ := v[0].(string)
	job, _ := v[1].(string)
	return id, []byte(job), nil
}
