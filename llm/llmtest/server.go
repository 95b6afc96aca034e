// Package llmtest is the fake OpenAI-compatible server every kommbridge
// test talks to. It answers /v1/chat/completions from a script (replies,
// tool calls, delays, hangs, error statuses with Retry-After, malformed
// and truncated bodies), lists models at /v1/models, transcribes at
// /v1/audio/transcriptions, embeds at /v1/embeddings (deterministic
// vectors: Embedding), and records every request it received.
package llmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// Reply is one scripted answer. The zero Reply is a 200 with empty content.
type Reply struct {
	Status     int    // HTTP status; 0 means 200
	Content    string // the assistant message's content
	ToolCalls  []openai.ToolCall
	RetryAfter string // Retry-After header value
	// Body, when set, is sent as is instead of a chat completion (malformed
	// or truncated bodies, provider error bodies).
	Body string
	// Delay holds the answer back; Hang holds it until the client gives up.
	Delay time.Duration
	Hang  bool
	// LogProbs are per-token log probabilities of Content's tokens, which
	// the fake takes to be its space-separated words.
	LogProbs     []float64
	Usage        openai.Usage
	FinishReason string
	// Header holds response headers to send (a gateway's own, a
	// Location with a 3xx Status).
	Header http.Header
	// Huge, when set, answers a 200 chat completion whose content is
	// this many bytes, streamed without holding them.
	Huge int64
}

// Request is one request the server received.
type Request struct {
	Path   string
	Header http.Header
	Body   []byte
	// Chat is Body decoded, for /chat/completions.
	Chat openai.ChatCompletionRequest
}

// Server is the fake. Use New; the zero Server is not usable.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	script   []Reply
	fallback func(Request) Reply
	requests []Request
	// APIKey, when set, is required as the bearer token (401 otherwise).
	apiKey string
	models []string
	// modelsStatus, when set, is /models' answer instead of the list.
	modelsStatus int
	// embedStatus, when set, is /embeddings' answer; embedDelay holds it
	// back.
	embedStatus int
	embedDelay  time.Duration
	closed      chan struct{}
}

// New starts a fake that answers each call with the next scripted Reply,
// and with a plain "ok" once the script runs out. It stops when t ends.
func New(t testing.TB) *Server {
	s := &Server{closed: make(chan struct{}), models: []string{"gpt-4o-mini"}}
	s.fallback = func(Request) Reply { return Reply{Content: "ok"} }
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// URL is the base URL to configure, ending in /v1.
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// Close releases hanging requests and stops the server.
func (s *Server) Close() {
	select {
	case <-s.closed:
	default:
		close(s.closed)
	}
	s.srv.Close()
}

// Enqueue appends replies to the script; each call takes the next one.
func (s *Server) Enqueue(r ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, r...)
}

// Default sets the answer for calls beyond the script, computed from the
// request (for example to echo what the user said).
func (s *Server) Default(f func(Request) Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fallback = f
}

// RequireKey makes the server answer 401 unless the bearer token is key.
func (s *Server) RequireKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKey = key
}

// SetModels sets what /v1/models lists.
func (s *Server) SetModels(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.models = ids
}

// FailModels makes /v1/models answer status (as gateways without a
// working list do) instead of the list.
func (s *Server) FailModels(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.modelsStatus = status
}

// Requests returns a copy of every chat completion request received.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, 0, len(s.requests))
	for _, r := range s.requests {
		if strings.HasSuffix(r.Path, "/chat/completions") {
			out = append(out, r)
		}
	}
	return out
}

// Calls counts the chat completion requests received.
func (s *Server) Calls() int { return len(s.Requests()) }

// Last returns the last chat completion request; it fails t if none came.
func (s *Server) Last(t testing.TB) Request {
	t.Helper()
	rs := s.Requests()
	if len(rs) == 0 {
		t.Fatal("llmtest: the model was never called")
	}
	return rs[len(rs)-1]
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req := Request{Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	s.mu.Lock()
	key, models, modelsStatus := s.apiKey, s.models, s.modelsStatus
	s.mu.Unlock()
	if key != "" && r.Header.Get("Authorization") != "Bearer "+key && r.Header.Get("Api-Key") != key {
		s.record(req)
		writeError(w, http.StatusUnauthorized, "Incorrect API key provided.", "invalid_api_key")
		return
	}
	switch p := r.URL.Path; {
	case p == "/v1/chat/completions" || azureChat.MatchString(p):
		if err := json.Unmarshal(body, &req.Chat); err != nil {
			s.record(req)
			writeError(w, http.StatusBadRequest, "could not parse the JSON body: "+err.Error(), "invalid_request_error")
			return
		}
		s.record(req)
		s.answer(w, r, s.next(req), req.Chat.Model)
	case (p == "/v1/models" || p == "/v1/openai/models") && modelsStatus != 0:
		s.record(req)
		writeError(w, modelsStatus, "Internal server error", "internal")
	case p == "/v1/models" || p == "/v1/openai/models":
		s.record(req)
		list := openai.ModelsList{}
		for _, id := range models {
			list.Models = append(list.Models, openai.Model{ID: id, Object: "model", OwnedBy: "llmtest"})
		}
		writeJSON(w, http.StatusOK, list)
	case p == "/v1/embeddings" || azureEmbed.MatchString(p):
		s.record(req)
		s.embed(w, r, body)
	case p == "/v1/audio/transcriptions" || azureAudio.MatchString(p):
		s.record(req)
		rep := s.next(req)
		if s.hold(w, r, rep) {
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"text": rep.Content})
	default:
		s.record(req)
		writeError(w, http.StatusNotFound, "unknown path "+r.URL.Path, "not_found")
	}
}

var (
	azureChat  = regexp.MustCompile(`^/v1/openai/deployments/[^/]+/chat/completions$`)
	azureAudio = regexp.MustCompile(`^/v1/openai/deployments/[^/]+/audio/transcriptions$`)
	azureEmbed = regexp.MustCompile(`^/v1/openai/deployments/[^/]+/embeddings$`)
)

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
}

func (s *Server) next(r Request) Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.script) > 0 {
		rep := s.script[0]
		s.script = s.script[1:]
		return rep
	}
	return s.fallback(r)
}

// hold applies Delay and Hang; it reports whether the client went away.
func (s *Server) hold(w http.ResponseWriter, r *http.Request, rep Reply) bool {
	if rep.Hang {
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return true
	}
	if rep.Delay > 0 {
		t := time.NewTimer(rep.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		case <-s.closed:
			return true
		}
	}
	return false
}

func (s *Server) answer(w http.ResponseWriter, r *http.Request, rep Reply, model string) {
	if s.hold(w, r, rep) {
		return
	}
	if rep.RetryAfter != "" {
		w.Header().Set("Retry-After", rep.RetryAfter)
	}
	for k, v := range rep.Header {
		w.Header()[k] = v
	}
	if rep.Huge > 0 {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"huge","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"`)
		chunk := []byte(strings.Repeat("a", 64<<10))
		for left := rep.Huge; left > 0; left -= int64(len(chunk)) {
			if _, err := w.Write(chunk[:min(int64(len(chunk)), left)]); err != nil {
				return // the client stopped reading
			}
		}
		io.WriteString(w, `"},"finish_reason":"stop"}]}`)
		return
	}
	status := rep.Status
	if status == 0 {
		status = http.StatusOK
	}
	if rep.Body != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, rep.Body)
		return
	}
	if status != http.StatusOK {
		writeError(w, status, fmt.Sprintf("scripted %d", status), "scripted")
		return
	}
	finish := rep.FinishReason
	if finish == "" {
		finish = "stop"
		if len(rep.ToolCalls) > 0 {
			finish = "tool_calls"
		}
	}
	msg := openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: rep.Content, ToolCalls: rep.ToolCalls}
	choice := openai.ChatCompletionChoice{Index: 0, Message: msg, FinishReason: openai.FinishReason(finish)}
	if rep.LogProbs != nil {
		words := strings.Fields(rep.Content)
		lp := &openai.LogProbs{}
		for i, p := range rep.LogProbs {
			tok := ""
			if i < len(words) {
				tok = words[i]
			}
			lp.Content = append(lp.Content, openai.LogProb{Token: tok, LogProb: p})
		}
		choice.LogProbs = lp
	}
	usage := rep.Usage
	if usage.TotalTokens == 0 {
		usage = openai.Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15}
	}
	writeJSON(w, http.StatusOK, openai.ChatCompletionResponse{
		ID: "chatcmpl-llmtest", Object: "chat.completion", Created: time.Now().Unix(), Model: model,
		Choices: []openai.ChatCompletionChoice{choice}, Usage: usage,
	})
}

// Contract is a reply in kommbridge's JSON contract, for Content.
func Contract(reply string, confidence float64, suggested ...string) string {
	if suggested == nil {
		suggested = []string{}
	}
	b, _ := json.Marshal(map[string]any{
		"reply": reply, "confidence": confidence, "handoff": false,
		"handoff_reason": "", "team": "", "suggested_replies": suggested,
	})
	return string(b)
}

// HandoffCall is a handoff_to_human tool call with the given arguments.
func HandoffCall(arguments string) openai.ToolCall {
	return Call("call_1", "handoff_to_human", arguments)
}

// Call is a tool call of function name with arguments (JSON).
func Call(id, name, arguments string) openai.ToolCall {
	return openai.ToolCall{ID: id, Type: openai.ToolTypeFunction, Function: openai.FunctionCall{Name: name, Arguments: arguments}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg, code string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "type": code, "code": code}})
}
