package adapter_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/adapter"
	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/store/memory"
)

var benchBody = []byte(`{"botId":"support-bot","key":"5-16650159-1550757013897","from":"u-9Mjpl","message":"Where is my order?","groupId":16650159,"metadata":{"KM_CHAT_CONTEXT":"{\"kmUserLocale\":\"en\"}"},"contentType":0,"applicationId":"1bfe0fad3344291b5","source":1,"createdAt":1550757013912}`)

func BenchmarkDecodeEvent(b *testing.B) {
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := adapter.DecodeEvent(benchBody, now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRender(b *testing.B) {
	r := kommbridge.Reply{Messages: []kommbridge.Message{{Text: "Your order shipped on Monday.",
		QuickReplies: []string{"Track my order", "Returns"}}}}
	b.ReportAllocs()
	for b.Loop() {
		adapter.Marshal(r)
	}
}

var upstreamReply = []byte(`{"id":"x","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"{\"reply\":\"Your order shipped on Monday.\",\"confidence\":0.92,\"handoff\":false,\"handoff_reason\":\"\",\"team\":\"\",\"suggested_replies\":[\"Track my order\"]}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":400,"completion_tokens":40,"total_tokens":440}}`)

// BenchmarkWebhook is the whole path in one process: HTTP in, auth,
// decode, dedupe, history, prompt, the model call over loopback to a
// minimal upstream, parse, render, HTTP out.
func BenchmarkWebhook(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(upstreamReply)
	}))
	defer up.Close()
	cfg, err := config.Parse([]byte(fmt.Sprintf("llm: {base_url: %q, max_retries: 0}\nbots:\n  - id: \"*\"\n    system_prompt: \"You are ACME's assistant. Answer in {{.Language}}.\"\n", up.URL+"/v1")), "b.yaml", func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	client, _ := llm.New(llm.Config{Endpoints: []llm.Endpoint{llm.Endpoint{BaseURL: cfg.LLM.BaseURL, APIKey: cfg.LLM.APIKey, APIType: string(cfg.LLM.APIType), Model: cfg.LLM.Model}}}, zap.NewNop())
	br, _ := bridge.New(cfg, bridge.Deps{Store: memory.New(memory.Options{}), Model: client})
	srv := httptest.NewServer(adapter.NewServer(br, adapter.Options{WebhookPath: "/webhook", MaxBodyBytes: 1 << 20}, zap.NewNop()))
	defer srv.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			body := fmt.Appendf(nil, `{"botId":"b","key":"%p-%d","groupId":%d,"message":"Where is my order?"}`, pb, i, i%1000)
			resp, err := hc.Post(srv.URL+"/webhook", "application/json", bytes.NewReader(body))
			if err != nil || resp.StatusCode != 200 {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
