package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// The body built by appending is, byte for byte, what go-openai encodes
// from the same request: every field kommbridge sends, every format,
// strings that need escaping, and the token limit under both names.
func TestBodyIsGoOpenAIs(t *testing.T) {
	zero, warm, tiny := float32(0), float32(0.3), float32(1e-7)
	schema := json.RawMessage(`{"type": "object",
	  "properties": {"reply": {"type": "string"}}, "required": ["reply"], "additionalProperties": false}`)
	tools := []Tool{{Name: "handoff_to_human", Description: "Hand <over> & out", Parameters: json.RawMessage(`{"type":"object","properties":{"reason":{"type":"string"}}}`)},
		{Name: "resolve_conversation", Parameters: json.RawMessage(`{}`)}}
	odd := "quotes \" back\\slash <b>&amp; tab\t nl\n cr\r bell\a \x00 \x1f del\x7f é 中文 🚚 \u2028\u2029 bad\xff\xfe utf8"
	msgs := []Message{
		{Role: RoleSystem, Content: "You are ACME's assistant." + odd},
		{Role: RoleUser, Content: "Where is my order?"},
		{Role: RoleAssistant, Content: ""},
		{Role: RoleUser, Parts: []Part{{Text: "What is this?"}, {ImageURL: "https://example.com/a.png?x=1&y=<2>"}, {ImageURL: "data:image/png;base64,AAAA", Detail: "low"}, {Text: ""}}},
	}
	for _, tt := range []struct {
		name string
		r    Request
	}{
		{"plain", Request{Messages: msgs[:2]}},
		{"every field", Request{Messages: msgs, Temperature: &warm, MaxTokens: 600, Format: ResponseJSONSchema, SchemaName: "kommbridge_reply", Schema: schema, LogProbs: true}},
		{"json_object, zero temperature", Request{Messages: msgs, Temperature: &zero, MaxTokens: 1, Format: ResponseJSONObject}},
		{"tools, tiny temperature", Request{Messages: msgs, Temperature: &tiny, MaxTokens: 16, Tools: tools}},
		{"odd strings", Request{Messages: []Message{{Role: RoleUser, Content: odd}, {Role: RoleUser, Parts: []Part{{Text: odd}}}}}},
	} {
		for _, completion := range []bool{false, true} {
			for _, model := range []string{"gpt-4o-mini", "o3-mini", "vendor/<model>"} {
				want, err := json.Marshal(toOpenAI(tt.r, model, completion))
				if err != nil {
					t.Fatal(err)
				}
				got := encodeBody(tt.r, model, completion)
				if !bytes.Equal(got, want) {
					t.Errorf("%s (%s, completion tokens %v):\n got %s\nwant %s", tt.name, model, completion, got, want)
				}
			}
		}
	}
}

func TestFloat32LikeEncodingJSON(t *testing.T) {
	for _, f := range []float32{0.3, 1, 2, 0.7, 1e-7, 1e-6, 1.5e21, math.SmallestNonzeroFloat32, 0.1234567} {
		want, _ := json.Marshal(f)
		if got := appendFloat32(nil, f); string(got) != string(want) {
			t.Errorf("%v: %s, want %s", f, got, want)
		}
	}
}

// The fixed part of a bot's request is encoded once per contract.
func TestFixedTailKept(t *testing.T) {
	r := Request{Format: ResponseJSONSchema, SchemaName: "n", Schema: json.RawMessage(`{"type":"object"}`)}
	a, b := fixedTail(r), fixedTail(r)
	if &a[0] != &b[0] || !strings.Contains(string(a), `"strict":true`) {
		t.Errorf("tail encoded twice, or wrong: %s", a)
	}
}

func BenchmarkBody(b *testing.B) {
	temp := float32(0.3)
	schema := json.RawMessage(strings.Repeat(" ", 10) + `{"type":"object","properties":{"reply":{"type":"string","description":"` + strings.Repeat("x", 1200) + `"}}}`)
	r := Request{Temperature: &temp, MaxTokens: 600, Format: ResponseJSONSchema, SchemaName: "kommbridge_reply", Schema: schema,
		Messages: []Message{{Role: RoleSystem, Content: strings.Repeat("You are ACME's assistant. ", 80)}}}
	for range 20 {
		r.Messages = append(r.Messages, Message{Role: RoleUser, Content: "Where is my order? It was due on Monday."}, Message{Role: RoleAssistant, Content: "Your order shipped on Monday and arrives on Thursday."})
	}
	b.Run("appended", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeBody(r, "gpt-4o-mini", false)
		}
	})
	b.Run("go-openai", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(toOpenAI(r, "gpt-4o-mini", false))
		}
	})
}

// A panic on the call's own goroutine is the call's error, not the
// process's end.
func TestApartContainsPanics(t *testing.T) {
	_, err := apart(func() (Response, error) { panic("unexpected body") })
	if err == nil || !strings.Contains(err.Error(), "panicked: unexpected body") {
		t.Errorf("err %v", err)
	}
	r, err := apart(func() (Response, error) { return Response{Content: "ok"}, nil })
	if err != nil || r.Content != "ok" {
		t.Errorf("%+v %v", r, err)
	}
}

// Many calls at once, with bodies larger than the connection's buffer,
// some answered before their body was read: every request that reaches
// the model carries its own body, whole.
func TestBodiesUnderEarlyAnswers(t *testing.T) {
	var bad atomic.Int32
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			// Answer without reading: the client may still be writing.
			http.Error(w, `{"error":{"message":"try later"}}`, http.StatusInternalServerError)
			return
		}
		var req struct {
			Messages []struct{ Content string } `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) != 1 {
			bad.Add(1)
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		id, _, _ := strings.Cut(req.Messages[0].Content, " ")
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}]}`, id)
	}))
	defer srv.Close()
	c, err := New(Config{Endpoints: []Endpoint{{BaseURL: srv.URL + "/v1", APIKey: "k", Model: "m"}}, MaxRetries: 3}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			id := fmt.Sprintf("call-%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			content := id + " " + strings.Repeat(string(rune('a'+i%26)), 20000+i*97)
			resp, err := c.Complete(ctx, Request{Messages: []Message{{Role: RoleUser, Content: content}}})
			if err == nil && resp.Content != id {
				t.Errorf("%s answered as %q", id, resp.Content)
			}
		})
	}
	wg.Wait()
	if bad.Load() > 0 {
		t.Errorf("%d request bodies arrived broken", bad.Load())
	}
}

// The kept system messages stay within their bound however many prompts
// there are (one per conversation when a prompt holds a user's name), and
// a prompt too large to keep is encoded all the same.
func TestSystemsKeptBounded(t *testing.T) {
	huge := strings.Repeat("Answer <briefly> & kindly. ", 20_000) // 540 KB
	for i := range 600 {
		content := fmt.Sprintf("You help Asha #%d. %s", i, strings.Repeat("é\"", i))
		if i%100 == 0 {
			content = huge
		}
		r := Request{Messages: []Message{{Role: RoleSystem, Content: content}, {Role: RoleUser, Content: "hi"}}}
		want, _ := json.Marshal(toOpenAI(r, "m", false))
		if got := encodeBody(r, "m", false); !bytes.Equal(got, want) {
			t.Fatalf("prompt %d: body differs from go-openai's", i)
		}
		systems.RLock()
		n, size := len(systems.m), systems.bytes
		systems.RUnlock()
		if n > maxSystems || size > maxSystemBytes {
			t.Fatalf("after %d prompts: %d kept, %d bytes", i+1, n, size)
		}
	}
}
