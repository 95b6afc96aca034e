package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kommbridge/kommbridge"
)

// Outcome records: one JSON value per conversation (key o:<conv>, kept
// ttl), and a sorted set of conversations by when they were last active
// (oi), for the report.

// UpdateOutcome applies step to conv's outcome record, atomically (a
// write that raced another is done again), and returns the outcome it
// decides, if any.
func (s *Store) UpdateOutcome(ctx context.Context, conv string, step kommbridge.Step, ttl time.Duration) (string, error) {
	key := s.key("o", conv)
	for range 5 {
		var decided string
		err := s.c.Watch(ctx, func(tx *goredis.Tx) error {
			rec := kommbridge.ConvRecord{Conversation: conv}
			switch raw, err := tx.Get(ctx, key).Bytes(); {
			case errors.Is(err, goredis.Nil):
			case err != nil:
				return err
			default:
				if err := json.Unmarshal(raw, &rec); err != nil {
					rec = kommbridge.ConvRecord{Conversation: conv}
				}
			}
			decided = rec.Apply(step)
			data, _ := json.Marshal(rec)
			_, err := tx.TxPipelined(ctx, func(p goredis.Pipeliner) error {
				p.Set(ctx, key, data, ttl)
				p.ZAdd(ctx, s.key("oi", ""), goredis.Z{Score: float64(time.Now().Unix()), Member: conv})
				p.ZRemRangeByScore(ctx, s.key("oi", ""), "-inf", strconv.FormatInt(time.Now().Add(-ttl).Unix(), 10))
				return nil
			})
			return err
		}, key)
		if errors.Is(err, goredis.TxFailedErr) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("store: outcome: %w", err)
		}
		return decided, nil
	}
	return "", errors.New("store: outcome: too many concurrent writes")
}

// Outcomes returns the records of the conversations active since since.
func (s *Store) Outcomes(ctx context.Context, since time.Time) ([]kommbridge.ConvRecord, error) {
	convs, err := s.c.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: s.key("oi", ""), Start: strconv.FormatInt(since.Unix(), 10), Stop: "+inf", ByScore: true}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: outcomes: %w", err)
	}
	var out []kommbridge.ConvRecord
	for start := 0; start < len(convs); start += 200 {
		part := convs[start:min(start+200, len(convs))]
		keys := make([]string, len(part))
		for i, c := range part {
			keys[i] = s.key("o", c)
		}
		vals, err := s.c.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, fmt.Errorf("store: outcomes: %w", err)
		}
		for _, v := range vals {
			str, ok := v.(string)
			if !ok {
				continue
			}
			var rec kommbridge.ConvRecord
			if json.Unmarshal([]byte(str), &rec) == nil {
				out = append(out, rec)
			}
		}
	}
	return out, nil
}

// MarkCounted reports whether conv's outcome is counted for the first
// time, across replicas.
func (s *Store) MarkCounted(ctx context.Context, conv, outcome string, ttl time.Duration) (bool, error) {
	ok, err := s.c.SetNX(ctx, s.key("oc", conv+":"+outcome), "1", ttl).Result()
	if err != nil {
		return false, fmt.Errorf("store: outcome: %w", err)
	}
	return ok, nil
}
