package redis

import (
	"context"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kommbridge/kommbridge"
)

// Limiter applies per-conversation, per-user and global limits shared by
// every replica, as GCRA in one Lua script: the three are checked and
// taken together, so an event refused by one uses up none.
type Limiter struct {
	s                  *Store
	conv, user, global kommbridge.Rate
}

// NewLimiter returns a Limiter keeping its state in s's Redis.
func (s *Store) NewLimiter(conv, user, global kommbridge.Rate) *Limiter {
	return &Limiter{s: s, conv: conv, user: user, global: global}
}

// gcra: KEYS are the buckets; ARGV holds, per key, the emission interval
// and the tolerance in microseconds (interval 0 = no limit). Returns 1 if
// all allow.
var gcra = goredis.NewScript(`
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[i*2-1])
  if interval > 0 then
    local tau = tonumber(ARGV[i*2])
    local tat = tonumber(redis.call("GET", key) or now)
    if tat < now then tat = now end
    local new = tat + interval
    if new - tau > now then return 0 end
    tats[i] = new
  end
end
for i, key in ipairs(KEYS) do
  if tats[i] then
    redis.call("SET", key, tats[i], "PX", math.ceil((tats[i] - now) / 1000) + 1)
  end
end
return 1`)

// Allow reports whether one more event of conv by user may go on now.
func (l *Limiter) Allow(ctx context.Context, conv, user string) (bool, error) {
	keys := []string{l.s.key("rl:c", conv), l.s.key("rl:u", user), l.s.key("rl:g", "all")}
	args := make([]any, 0, 6)
	for _, r := range []kommbridge.Rate{l.conv, l.user, l.global} {
		if r.Per <= 0 {
			args = append(args, 0, 0)
			continue
		}
		interval := 1e6 / r.Per
		args = append(args, int64(interval), int64(interval*float64(r.Burst)))
	}
	n, err := gcra.Run(ctx, l.s.c, keys, args...).Int()
	if err != nil {
		return false, fmt.Errorf("store: limits: %w", err)
	}
	return n == 1, nil
}
