package llm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"
)

// Embedder turns texts into vectors through an endpoint's /embeddings:
// the passages of a knowledge base when it is built, a question while a
// webhook waits. It is safe for concurrent use.
type Embedder struct {
	ep         *endpoint
	dimensions int
}

// maxBatch is how many texts go in one /embeddings call (OpenAI takes
// 2,048; smaller batches keep one slow call from holding a whole build).
const maxBatch = 64

// maxEmbedAnswer bounds an /embeddings answer: 64 vectors of 3,072
// dimensions written as JSON numbers come to about 4 MB.
const maxEmbedAnswer = 32 << 20

// NewEmbedder calls e's /embeddings for e.Model; dimensions, when not 0,
// asks for shortened vectors (text-embedding-3 models).
func NewEmbedder(e Endpoint, dimensions int, hc *http.Client) *Embedder {
	if hc == nil {
		hc = &http.Client{}
	}
	own := *hc
	own.CheckRedirect = SameOrigin
	headers := http.Header{}
	for k, v := range e.Headers {
		headers.Set(k, v)
	}
	return &Embedder{dimensions: dimensions, ep: &endpoint{
		name: EndpointName(e.BaseURL), base: strings.TrimRight(e.BaseURL, "/"), model: e.Model, key: e.APIKey,
		azure: e.APIType == "azure", version: e.APIVersion, headers: headers, hc: &own, maxBody: maxEmbedAnswer,
	}}
}

// Model is the embedding model; Name the endpoint, as logs name it.
func (e *Embedder) Model() string { return e.ep.model }

// Name is the endpoint's host.
func (e *Embedder) Name() string { return e.ep.name }

// Dimensions is what the embedder asks for (0: the model's own).
func (e *Embedder) Dimensions() int { return e.dimensions }

// Embed returns one vector per text, each scaled to unit length, in
// batches of maxBatch. A failed batch is tried once more when the failure
// may pass and ctx leaves room; errors are *Error, as the chat's.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += maxBatch {
		batch := texts[start:min(start+maxBatch, len(texts))]
		vs, err := e.batch(ctx, batch)
		if err != nil {
			var le *Error
			if errors.As(err, &le) && le.retryable() && ctx.Err() == nil {
				wait := max(le.RetryAfter, 500*time.Millisecond)
				if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > wait {
					t := time.NewTimer(wait)
					select {
					case <-t.C:
						vs, err = e.batch(ctx, batch)
					case <-ctx.Done():
						t.Stop()
					}
				}
			}
			if err != nil {
				return nil, err
			}
		}
		out = append(out, vs...)
	}
	return out, nil
}

func (e *Embedder) batch(ctx context.Context, texts []string) ([][]float32, error) {
	req := struct {
		Model      string   `json:"model"`
		Input      []string `json:"input"`
		Dimensions int      `json:"dimensions,omitempty"`
	}{e.ep.model, texts, e.dimensions}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	answer, err := e.ep.do(ctx, http.MethodPost, "/embeddings", e.ep.model, "application/json", body)
	if err != nil {
		return nil, classify(ctx, e.ep.name, e.ep.model, err)
	}
	var resp struct {
		Data []struct {
			Index     int       `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(answer, &resp); err != nil {
		return nil, classify(ctx, e.ep.name, e.ep.model, &malformed{err: err, body: answer})
	}
	if len(resp.Data) != len(texts) {
		return nil, classify(ctx, e.ep.name, e.ep.model, &malformed{err: fmt.Errorf("%d vectors for %d texts", len(resp.Data), len(texts)), body: answer})
	}
	out := make([][]float32, len(texts))
	dims := 0
	for _, d := range resp.Data {
		if d.Index < 0 || d.Index >= len(texts) || out[d.Index] != nil || len(d.Embedding) == 0 || (dims != 0 && len(d.Embedding) != dims) {
			return nil, classify(ctx, e.ep.name, e.ep.model, &malformed{err: errors.New("vectors out of order, missing or of differing lengths"), body: answer})
		}
		dims = len(d.Embedding)
		out[d.Index] = Normalize(d.Embedding)
	}
	return out, nil
}

// Normalize scales v to unit length in place (a zero vector stays zero),
// so that a dot product is the cosine.
func Normalize(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 {
		return v
	}
	inv := float32(1 / math.Sqrt(sum))
	for i := range v {
		v[i] *= inv
	}
	return v
}
