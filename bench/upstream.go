package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// reply is the fake model's answer: a chat completion holding a reply in
// kommbridge's json_schema contract.
var reply = []byte(`{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"{\"reply\":\"Your order shipped on Monday and arrives on Thursday.\",\"confidence\":0.92,\"handoff\":false,\"handoff_reason\":\"\",\"team\":\"\",\"suggested_replies\":[\"Track my order\",\"Returns\"]}"},` +
	`"finish_reason":"stop"}],"usage":{"prompt_tokens":412,"completion_tokens":48,"total_tokens":460}}`)

// serveUpstream is the fake OpenAI-compatible upstream: a fixed reply after
// a fixed delay. GET /sample returns the last chat request it received,
// so the baseline can send the very request kommbridge sent.
func serveUpstream(addr string, delay time.Duration, cert, key string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var last atomic.Pointer[[]byte]
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("X-Bench-Direct") == "" {
			last.Store(&body)
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(reply)
	})
	mux.HandleFunc("GET /sample", func(w http.ResponseWriter, r *http.Request) {
		if b := last.Load(); b != nil {
			w.Write(*b)
		}
	})
	fmt.Printf("listening on %s\n", ln.Addr())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if cert != "" {
		return srv.ServeTLS(ln, cert, key) // HTTP/2 where the client offers it
	}
	return srv.Serve(ln)
}
