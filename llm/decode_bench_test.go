package llm

import "testing"

// BenchmarkDecodeChat reads a typical completion: a json_schema reply
// encoded as the message's content string, with usage.
func BenchmarkDecodeChat(b *testing.B) {
	body := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1733000000,"model":"gpt-4o-mini",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"{\"reply\":\"Your order shipped on Monday and should arrive by Thursday. You can follow it from the link in your confirmation email.\",\"confidence\":0.92,\"handoff\":false,\"handoff_reason\":\"\",\"team\":\"\",\"suggested_replies\":[\"Track my order\",\"Returns\",\"Talk to a person\"]}","refusal":null},` +
		`"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":812,"completion_tokens":45,"total_tokens":857}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeChat(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBody encodes a chat request of 20 turns with a json_schema
// response format: the one encoding of the request's typed value.
func BenchmarkBody(b *testing.B) {
	req := Request{MaxTokens: 600, Format: ResponseJSONSchema, SchemaName: "reply",
		Schema: []byte(`{"type":"object","properties":{"reply":{"type":"string"},"confidence":{"type":"number"},"handoff":{"type":"boolean"}},"required":["reply","confidence","handoff"],"additionalProperties":false}`)}
	req.Messages = append(req.Messages, Message{Role: RoleSystem, Content: "You are the support assistant of ACME, a shop for outdoor gear. Answer in English, briefly and kindly."})
	for i := range 20 {
		role := RoleUser
		if i%2 == 1 {
			role = RoleAssistant
		}
		req.Messages = append(req.Messages, Message{Role: role, Content: "Where is my order? It was due on Monday and has not arrived yet."})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := req.body("gpt-4o-mini", false); err != nil {
			b.Fatal(err)
		}
	}
}
