package kb

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/llm"
)

// Retriever finds the passages that answer a question. The embedded
// Base is one; an external engine would be another, held to kbtest's
// contract.
type Retriever interface {
	// Retrieve returns the k passages that best answer question, with the
	// match scores the bridge decides "not in the help center" on.
	Retrieve(ctx context.Context, question string, k int) (Hits, error)
	// Floor is the match score kb eval calibrated; ok is false before.
	Floor() (floor float64, ok bool)
}

// Base is a knowledge base being served: its loaded index, and the
// embedder its questions are embedded with.
type Base struct {
	Name    string
	Index   *Index
	emb     Embedder
	timeout time.Duration
}

// Retrieve embeds the question (within the base's embeddings timeout and
// ctx) and searches; when embedding fails or is slow, it searches by
// keyword alone and says why in Hits.EmbedErr.
func (b *Base) Retrieve(ctx context.Context, question string, k int) (Hits, error) {
	q := Query{Text: question}
	var embedErr error
	if b.emb != nil && b.Index.dims > 0 {
		ectx, cancel := context.WithTimeout(ctx, b.timeout)
		vs, err := b.emb.Embed(ectx, []string{question})
		cancel()
		switch {
		case err != nil:
			embedErr = err
		case len(vs) == 1:
			q.Vector = vs[0]
		}
	}
	h, err := b.Index.Search(ctx, q, k)
	h.EmbedErr = embedErr
	return h, err
}

// Floor is the calibrated floor of the index's manifest.
func (b *Base) Floor() (float64, bool) {
	if f := b.Index.Manifest.Floor; f != nil {
		return *f, true
	}
	return 0, false
}

// Embedder is the base's embedder, nil without embeddings.
func (b *Base) Embedder() Embedder { return b.emb }

// NewEmbedder is the embedder of a knowledge base's configuration; nil
// when it has no embeddings.
func NewEmbedder(k *config.KnowledgeBase, hc *http.Client) Embedder {
	e := k.Embeddings
	if e == nil {
		return nil
	}
	return llm.NewEmbedder(llm.Endpoint{BaseURL: e.BaseURL, APIKey: e.APIKey, APIType: string(e.APIType), APIVersion: e.APIVersion, Model: e.Model, Headers: e.Headers}, e.Dimensions, hc)
}

// Load opens the index of knowledge base k (its path resolved) and
// checks it was built the way k says: a missing file is an error naming
// the command that builds it; vectors of another model, or none where k
// has embeddings, are refused.
func Load(k *config.KnowledgeBase, path string, hc *http.Client) (*Base, error) {
	x, err := Open(path)
	if errors.Is(err, ErrNoIndex) {
		return nil, fmt.Errorf("knowledge base %s: no index at %s: build it with `kommbridge kb build --base %s`", k.Name, path, k.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("knowledge base %s: %w (build it again with `kommbridge kb build --base %s`)", k.Name, err, k.Name)
	}
	if why := mismatch(k, x.Manifest); why != "" {
		x.Close()
		return nil, fmt.Errorf("knowledge base %s: %s is refused: %s; build it again with `kommbridge kb build --base %s`", k.Name, path, why, k.Name)
	}
	b := &Base{Name: k.Name, Index: x, emb: NewEmbedder(k, hc)}
	if e := k.Embeddings; e != nil {
		b.timeout = e.Timeout.D()
	}
	return b, nil
}

// mismatch says how an index's manifest disagrees with the base's
// configuration, "" when it does not.
func mismatch(k *config.KnowledgeBase, m Manifest) string {
	e, got := k.Embeddings, m.Embedding
	switch {
	case m.Base != k.Name:
		return fmt.Sprintf("it was built for knowledge base %q", m.Base)
	case m.Language != k.Language:
		return fmt.Sprintf("it was built with the %s analyser; the configuration names %s", m.Language, k.Language)
	case e == nil && got != nil:
		return fmt.Sprintf("it holds vectors of %s, and the configuration has no embeddings", got.Model)
	case e != nil && got == nil:
		return fmt.Sprintf("it holds no vectors, and the configuration embeds with %s", e.Model)
	case e != nil && got.Model != e.Model:
		return fmt.Sprintf("its vectors come from %s; the configuration embeds with %s", got.Model, e.Model)
	case e != nil && e.Dimensions != 0 && got.Dimensions != e.Dimensions:
		return fmt.Sprintf("its vectors have %d dimensions; the configuration asks for %d", got.Dimensions, e.Dimensions)
	}
	return ""
}

// Library holds the knowledge bases being served, by name. Reload loads
// new indexes beside the ones serving and switches when all loaded;
// searches under way finish on the index they began with.
type Library struct {
	mu    sync.RWMutex
	bases map[string]*Base
	hc    *http.Client
	// retire is how long a replaced index stays open for searches that
	// began on it.
	retire time.Duration
}

// LoadLibrary loads every knowledge base of cfg.
func LoadLibrary(cfg *config.Config, hc *http.Client) (*Library, error) {
	l := &Library{bases: map[string]*Base{}, hc: hc, retire: time.Minute}
	if err := l.Reload(cfg); err != nil {
		return nil, err
	}
	return l, nil
}

// Get returns the base named name, nil when there is none (the Retriever
// interface holding a nil *Base is never returned).
func (l *Library) Get(name string) Retriever {
	if l == nil {
		return nil
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if b := l.bases[name]; b != nil {
		return b
	}
	return nil
}

// Bases returns the bases being served.
func (l *Library) Bases() []*Base {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]*Base, 0, len(l.bases))
	for _, b := range l.bases {
		out = append(out, b)
	}
	return out
}

// Reload loads cfg's indexes; on any error none is switched and the
// bases serving stay.
func (l *Library) Reload(cfg *config.Config) error {
	next := map[string]*Base{}
	for i := range cfg.Knowledge {
		k := &cfg.Knowledge[i]
		b, err := Load(k, cfg.Resolve(k.Index), l.hc)
		if err != nil {
			for _, b := range next {
				b.Index.Close()
			}
			return err
		}
		next[k.Name] = b
	}
	l.mu.Lock()
	old := l.bases
	l.bases = next
	l.mu.Unlock()
	for _, b := range old {
		time.AfterFunc(l.retire, func() { b.Index.Close() })
	}
	return nil
}

// Close closes every index.
func (l *Library) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.bases {
		b.Index.Close()
	}
	l.bases = nil
}
