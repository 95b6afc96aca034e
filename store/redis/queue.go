package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/kommbridge/kommbridge"
)

// The messages waiting for a conversation's lock: a list per conversation
// of {key, text, at}, kept queueTTL, and a short-lived mark for each
// message a newer one took.

// queueTTL is how long a queued message is remembered: longer than any
// wait for a lock (a held answer may wait minutes).
const queueTTL = 10 * time.Minute

type queuedJSON struct {
	Key  string `json:"k"`
	Text string `json:"t"`
	At   int64  `json:"at"` // unix ms
}

// Queue records that message key of conv waits for the conversation's
// lock.
func (s *Store) Queue(ctx context.Context, conv, key, text string) error {
	e, _ := json.Marshal(queuedJSON{Key: key, Text: text, At: time.Now().UnixMilli()})
	_, err := s.c.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.RPush(ctx, s.key("q", conv), e)
		p.PExpire(ctx, s.key("q", conv), queueTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: queue: %w", err)
	}
	return nil
}

// dequeueScript decides for ARGV[1] (the key) in the queue KEYS[1],
// dropping entries older than ARGV[3] ms at ARGV[2]: {1, texts...} when
// it is the newest (the queue is taken and each other key marked taken
// under KEYS[2]..prefix), {2} when a newer one waits, {3} when it was
// taken, {0} when it was never queued.
var dequeueScript = goredis.NewScript(`
local now, ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local fresh = {}
for _, raw in ipairs(redis.call("LRANGE", KEYS[1], 0, -1)) do
  local e = cjson.decode(raw)
  if tonumber(e.at) + ttl > now then table.insert(fresh, {raw = raw, e = e}) end
end
local at = nil
for i, f in ipairs(fresh) do if f.e.k == ARGV[1] then at = i end end
if at == nil or at < #fresh then
  redis.call("DEL", KEYS[1])
  for _, f in ipairs(fresh) do redis.call("RPUSH", KEYS[1], f.raw) end
  if #fresh > 0 then redis.call("PEXPIRE", KEYS[1], ttl) end
  if at ~= nil then return {2} end
  if redis.call("DEL", ARGV[4] .. ARGV[1]) == 1 then return {3} end
  return {0}
end
redis.call("DEL", KEYS[1])
local out = {1}
for _, f in ipairs(fresh) do
  table.insert(out, f.e.t)
  if f.e.k ~= ARGV[1] then redis.call("SET", ARGV[4] .. f.e.k, "1", "PX", ttl) end
end
return out`)

// Dequeue, with conv's lock held: Answer with the texts queued up to key
// when it is the newest; Joined when a newer message waits or took it;
// Alone when it was never queued (or its entry is gone).
func (s *Store) Dequeue(ctx context.Context, conv, key string) ([]string, kommbridge.Queued, error) {
	res, err := dequeueScript.Run(ctx, s.c, []string{s.key("q", conv)}, key, time.Now().UnixMilli(), queueTTL.Milliseconds(), s.key("qt", "")).Slice()
	if err != nil {
		return nil, kommbridge.Alone, fmt.Errorf("store: dequeue: %w", err)
	}
	if len(res) == 0 {
		return nil, kommbridge.Alone, fmt.Errorf("store: dequeue: an empty answer")
	}
	switch res[0] {
	case int64(1):
		texts := make([]string, 0, len(res)-1)
		for _, t := range res[1:] {
			texts = append(texts, fmt.Sprint(t))
		}
		return texts, kommbridge.Answer, nil
	case int64(2), int64(3):
		return nil, kommbridge.Joined, nil
	}
	return nil, kommbridge.Alone, nil
}
