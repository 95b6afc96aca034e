package llmtest

import (
	"encoding/json"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
	"time"
	"unicode"

	openai "github.com/sashabaranov/go-openai"
)

// DefaultDimensions is the length of the fake's vectors when a request
// asks for none.
const DefaultDimensions = 256

// Embedding is the fake's vector for text: deterministic, offline, and
// close to meaning the way a bag of words is. Each word that is not a
// stop word (lower-cased, with a crude English suffix stripped) adds
// weight 1 at its hash, and its letter trigrams together half that at
// theirs, so that "refunds", "refunded" and "refund" land near each other
// without long words outweighing short ones; the vector has unit length.
func Embedding(text string, dims int) []float32 {
	if dims <= 0 {
		dims = DefaultDimensions
	}
	v := make([]float64, dims)
	add := func(feature string, w float64) {
		h := fnv.New64a()
		h.Write([]byte(feature))
		x := h.Sum64()
		sign := 1.0
		if x&1 == 1 {
			sign = -1
		}
		v[(x>>1)%uint64(dims)] += sign * w
	}
	for _, word := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if stopWords[word] {
			continue
		}
		word = stem(word)
		add("w:"+word, 1)
		padded := "^" + word + "$"
		n := len(padded) - 2
		for i := 0; i+3 <= len(padded); i++ {
			add("t:"+padded[i:i+3], 0.5/float64(n))
		}
	}
	var sum float64
	for _, x := range v {
		sum += x * x
	}
	out := make([]float32, dims)
	if sum == 0 {
		return out
	}
	for i, x := range v {
		out[i] = float32(x / math.Sqrt(sum))
	}
	return out
}

func stem(w string) string {
	for _, suffix := range []string{"ing", "ed", "es", "s"} {
		if len(w) > len(suffix)+3 && strings.HasSuffix(w, suffix) {
			return strings.TrimSuffix(w, suffix)
		}
	}
	return w
}

var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields("a an the and or but if of to in on at by for with from as is are was were be been being do does did " +
		"i me my we our you your he she it its they them their this that these those what which who whom how when where why " +
		"can could will would shall should may might must have has had not no so than too very just about into over also") {
		m[w] = true
	}
	return m
}()

// FailEmbeddings makes /embeddings answer status (0 restores it).
func (s *Server) FailEmbeddings(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.embedStatus = status
}

// DelayEmbeddings holds every /embeddings answer back by d.
func (s *Server) DelayEmbeddings(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.embedDelay = d
}

// EmbeddingRequests returns the /embeddings requests received, decoded.
func (s *Server) EmbeddingRequests() []openai.EmbeddingRequestStrings {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []openai.EmbeddingRequestStrings
	for _, r := range s.requests {
		if strings.HasSuffix(r.Path, "/embeddings") {
			var e openai.EmbeddingRequestStrings
			if json.Unmarshal(r.Body, &e) == nil {
				out = append(out, e)
			}
		}
	}
	return out
}

// EmbeddedTexts counts the texts embedded so far.
func (s *Server) EmbeddedTexts() int {
	n := 0
	for _, r := range s.EmbeddingRequests() {
		n += len(r.Input)
	}
	return n
}

func (s *Server) embed(w http.ResponseWriter, r *http.Request, body []byte) {
	s.mu.Lock()
	status, delay := s.embedStatus, s.embedDelay
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-s.closed:
			t.Stop()
			return
		}
	}
	if status != 0 {
		writeError(w, status, "embeddings unavailable", "server_error")
		return
	}
	var req openai.EmbeddingRequestStrings
	if err := json.Unmarshal(body, &req); err != nil || len(req.Input) == 0 {
		// A single string is also valid input.
		var one struct {
			Model      string `json:"model"`
			Input      string `json:"input"`
			Dimensions int    `json:"dimensions"`
		}
		if json.Unmarshal(body, &one) != nil || one.Input == "" {
			writeError(w, http.StatusBadRequest, "input must be a string or an array of strings", "invalid_request_error")
			return
		}
		req = openai.EmbeddingRequestStrings{Model: openai.EmbeddingModel(one.Model), Input: []string{one.Input}, Dimensions: one.Dimensions}
	}
	resp := openai.EmbeddingResponse{Object: "list", Model: req.Model}
	for i, text := range req.Input {
		resp.Data = append(resp.Data, openai.Embedding{Object: "embedding", Index: i, Embedding: Embedding(text, req.Dimensions)})
	}
	writeJSON(w, http.StatusOK, resp)
}
