package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kommbridge/kommbridge"
)

// Unanswered questions: a sorted set per knowledge base of question ->
// times asked, and a hash of question -> when last (unix ms), both kept
// gapsTTL after the last one and trimmed to maxGaps.
const (
	maxGaps = 1000
	gapsTTL = 30 * 24 * time.Hour
)

// recordGapScript counts ARGV[1] in KEYS[1], notes ARGV[2] as its last
// time in KEYS[2], and trims both to the ARGV[3] most asked.
var recordGapScript = goredis.NewScript(`
redis.call("ZINCRBY", KEYS[1], 1, ARGV[1])
redis.call("HSET", KEYS[2], ARGV[1], ARGV[2])
local over = redis.call("ZCARD", KEYS[1]) - tonumber(ARGV[3])
if over > 0 then
  for _, q in ipairs(redis.call("ZRANGE", KEYS[1], 0, over - 1)) do redis.call("HDEL", KEYS[2], q) end
  redis.call("ZREMRANGEBYRANK", KEYS[1], 0, over - 1)
end
redis.call("PEXPIRE", KEYS[1], ARGV[4])
redis.call("PEXPIRE", KEYS[2], ARGV[4])
return 1`)

// RecordGap counts one more asking of question that base did not answer.
func (s *Store) RecordGap(ctx context.Context, base, question string) error {
	err := recordGapScript.Run(ctx, s.c, []string{s.key("gaps", base), s.key("gapsat", base)},
		question, time.Now().UnixMilli(), maxGaps, gapsTTL.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("store: record gap: %w", err)
	}
	return nil
}

// Gaps returns base's n most asked unanswered questions, most asked
// first.
func (s *Store) Gaps(ctx context.Context, base string, n int) ([]kommbridge.Gap, error) {
	zs, err := s.c.ZRevRangeWithScores(ctx, s.key("gaps", base), 0, int64(n)-1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: gaps: %w", err)
	}
	out := make([]kommbridge.Gap, 0, len(zs))
	var qs []string
	for _, z := range zs {
		q, _ := z.Member.(string)
		qs = append(qs, q)
		out = append(out, kommbridge.Gap{Question: q, Count: int(z.Score)})
	}
	if len(qs) > 0 {
		ats, err := s.c.HMGet(ctx, s.key("gapsat", base), qs...).Result()
		if err != nil {
			return nil, fmt.Errorf("store: gaps: %w", err)
		}
		for i, v := range ats {
			if str, ok := v.(string); ok {
				if ms, err := strconv.ParseInt(str, 10, 64); err == nil {
					out[i].Last = time.UnixMilli(ms)
				}
			}
		}
	}
	return out, nil
}

// SharedSecret returns the secret every replica uses for name, making it
// on first use (32 random bytes, kept without expiry): confirmation
// buttons signed on one replica are checked on another.
func (s *Store) SharedSecret(ctx context.Context, name string) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	key := s.key("secret", name)
	if err := s.c.SetNX(ctx, key, hex.EncodeToString(fresh), 0).Err(); err != nil {
		return nil, fmt.Errorf("store: secret: %w", err)
	}
	v, err := s.c.Get(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("store: secret: %w", err)
	}
	return hex.DecodeString(v)
}
