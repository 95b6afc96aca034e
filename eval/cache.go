package eval

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/kommbridge/kommbridge/llm"
)

// Cache keeps model answers on disk by request (--cache DIR), so that a
// rerun of an unchanged suite, in CI say, asks the model nothing: a
// request answered before gets the same answer, the judge's included.
// Only answers are kept, never failures. With a cache, repeats of a case
// get the same answer each.
type Cache struct {
	// Dir is where answers are kept, a file each.
	Dir          string
	Hits, Misses atomic.Int64
}

// Wrap is m answering through the cache. salt names what answers beyond
// the request (the endpoints and their default model), so that two
// configurations never share an answer.
func (c *Cache) Wrap(m Completer, salt string) Completer {
	return cached{c: c, m: m, salt: salt}
}

type cached struct {
	c    *Cache
	m    Completer
	salt string
}

func (k cached) Complete(ctx context.Context, r llm.Request) (llm.Response, error) {
	raw, _ := json.Marshal(struct {
		Salt    string
		Request llm.Request
	}{k.salt, r})
	sum := sha256.Sum256(raw)
	path := filepath.Join(k.c.Dir, hex.EncodeToString(sum[:])+".json")
	if b, err := os.ReadFile(path); err == nil {
		var resp llm.Response
		if json.Unmarshal(b, &resp) == nil {
			k.c.Hits.Add(1)
			return resp, nil
		}
	}
	k.c.Misses.Add(1)
	resp, err := k.m.Complete(ctx, r)
	if err != nil {
		return resp, err
	}
	if b, err := json.Marshal(resp); err == nil && os.MkdirAll(k.c.Dir, 0o755) == nil {
		// Written whole or not at all, whatever runs at once.
		if f, err := os.CreateTemp(k.c.Dir, "answer-*"); err == nil {
			_, werr := f.Write(b)
			if f.Close() == nil && werr == nil {
				os.Rename(f.Name(), path)
			} else {
				os.Remove(f.Name())
			}
		}
	}
	return resp, nil
}
