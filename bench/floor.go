package main

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"sync"
	"time"
)

// The floor: the least a Go bridge can do for a webhook, standard library
// only, so that kommbridge is measured against it in the same run. It
// checks the token, decodes the webhook into a struct, dedupes the key,
// keeps the last 20 turns of the conversation, builds the chat request
// with encoding/json (the same system prompt and response format
// kommbridge sent, read from the upstream's sample), POSTs it over a
// tuned Transport, decodes the completion, parses the reply's JSON and
// answers one message. No limits, no retries, no handoff rules, no
// templates, no logging, no metrics.

type floorWebhook struct {
	BotID    string          `json:"botId"`
	Key      string          `json:"key"`
	From     string          `json:"from"`
	Message  string          `json:"message"`
	GroupID  json.RawMessage `json:"groupId"`
	Metadata json.RawMessage `json:"metadata"`
}

type floorMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type floorRequest struct {
	Model          string          `json:"model"`
	Messages       []floorMessage  `json:"messages"`
	MaxTokens      int             `json:"max_tokens"`
	ResponseFormat json.RawMessage `json:"response_format,omitempty"`
}

type floor struct {
	upstream string
	system   string
	format   json.RawMessage
	hc       *http.Client

	mu      sync.Mutex
	answers map[string][]byte
	history map[string][]floorMessage
}

// serveFloor runs the floor bridge on addr in front of upstream, with the
// system prompt and response format of the chat request in sampleFile;
// pprofAddr, when set, serves its runtime profiles.
func serveFloor(addr, upstream, sampleFile, pprofAddr string) error {
	var sample struct {
		Messages       []floorMessage  `json:"messages"`
		ResponseFormat json.RawMessage `json:"response_format"`
	}
	if b, err := os.ReadFile(sampleFile); err == nil {
		json.Unmarshal(b, &sample)
	}
	f := &floor{upstream: upstream, format: sample.ResponseFormat, answers: map[string][]byte{}, history: map[string][]floorMessage{},
		hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, IdleConnTimeout: time.Minute, DisableCompression: true}}}
	if len(sample.Messages) > 0 {
		f.system = sample.Messages[0].Content
	}
	if pprofAddr != "" {
		go http.ListenAndServe(pprofAddr, nil) // net/http/pprof's handlers
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}

func (f *floor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && r.URL.Path == "/stats" {
		serveStats(w, r)
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-Kommbridge-Token")), []byte(benchToken)) != 1 {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var wh floorWebhook
	if err != nil || json.Unmarshal(body, &wh) != nil {
		http.Error(w, `{"error":"bad webhook"}`, http.StatusBadRequest)
		return
	}
	dkey := wh.BotID + "/" + wh.Key
	conv := wh.BotID + "/" + string(bytes.Trim(wh.GroupID, `"`))
	f.mu.Lock()
	if prev, ok := f.answers[dkey]; ok {
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write(prev)
		return
	}
	hist := append([]floorMessage(nil), f.history[conv]...)
	f.mu.Unlock()

	msgs := make([]floorMessage, 0, len(hist)+2)
	msgs = append(msgs, floorMessage{Role: "system", Content: f.system})
	msgs = append(msgs, hist...)
	msgs = append(msgs, floorMessage{Role: "user", Content: wh.Message})
	reqBody, _ := json.Marshal(floorRequest{Model: "gpt-4o-mini", Messages: msgs, MaxTokens: 600, ResponseFormat: f.format})
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, f.upstream+"/chat/completions", bytes.NewReader(reqBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer bench")
	resp, err := f.hc.Do(req)
	if err != nil {
		http.Error(w, `{"error":"upstream"}`, http.StatusBadGateway)
		return
	}
	var completion struct {
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	err = json.NewDecoder(resp.Body).Decode(&completion)
	resp.Body.Close()
	if err != nil || len(completion.Choices) == 0 {
		http.Error(w, `{"error":"upstream"}`, http.StatusBadGateway)
		return
	}
	var parsed struct {
		Reply            string   `json:"reply"`
		Handoff          bool     `json:"handoff"`
		SuggestedReplies []string `json:"suggested_replies"`
	}
	if json.Unmarshal([]byte(completion.Choices[0].Message.Content), &parsed) != nil {
		parsed.Reply = completion.Choices[0].Message.Content
	}
	out, _ := json.Marshal([]struct {
		Message string `json:"message"`
	}{{parsed.Reply}})

	f.mu.Lock()
	h := append(f.history[conv], floorMessage{Role: "user", Content: wh.Message}, floorMessage{Role: "assistant", Content: parsed.Reply})
	if len(h) > 20 {
		h = h[len(h)-20:]
	}
	f.history[conv] = h
	f.answers[dkey] = out
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}
