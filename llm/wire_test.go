package llm

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	openai "github.com/sashabaranov/go-openai"
)

// The request body is one typed value, encoded once: every field, the
// token limit under both names, a temperature of 0 sent as 0, and the
// tool loop's messages (an assistant's calls with their ids, the tool
// results naming them). go-openai, an independent reading of the API,
// decodes it to the same request.
func TestRequestBody(t *testing.T) {
	zero, warm := float32(0), float32(0.3)
	schema := json.RawMessage(`{"type":"object","properties":{"reply":{"type":"string"}},"required":["reply"],"additionalProperties":false}`)
	r := Request{
		Messages: []Message{
			{Role: RoleSystem, Content: "You are <ACME>'s assistant & more."},
			{Role: RoleUser, Parts: []Part{{Text: "What is this?"}, {ImageURL: "https://example.com/a.png", Detail: "low"}}},
			{Role: RoleAssistant, ToolCalls: []ToolCall{{ID: "call_1", Name: "order_status", Arguments: `{"order_id":"1234"}`}}},
			{Role: RoleTool, ToolCallID: "call_1", Content: `{"status":"shipped"}`},
			{Role: RoleAssistant, Content: "It shipped."},
		},
		Temperature: &warm, MaxTokens: 600, Format: ResponseJSONSchema, SchemaName: "kommbridge_reply", Schema: schema, LogProbs: true,
		Tools: []Tool{{Name: "order_status", Description: "Look up an order.", Parameters: json.RawMessage(`{"type":"object"}`)}},
	}
	b, err := r.body("gpt-4o-mini", false)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are \u003cACME\u003e's assistant \u0026 more."},` +
		`{"role":"user","content":[{"type":"text","text":"What is this?"},{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"low"}}]},` +
		`{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"order_status","arguments":"{\"order_id\":\"1234\"}"}}]},` +
		`{"role":"tool","content":"{\"status\":\"shipped\"}","tool_call_id":"call_1"},{"role":"assistant","content":"It shipped."}],` +
		`"max_tokens":600,"temperature":0.3,"response_format":{"type":"json_schema","json_schema":{"name":"kommbridge_reply","schema":` + string(schema) + `,"strict":true}},` +
		`"tools":[{"type":"function","function":{"name":"order_status","description":"Look up an order.","parameters":{"type":"object"}}}],"logprobs":true}`
	if string(b) != want {
		t.Errorf("body\n got %s\nwant %s", b, want)
	}
	var dec openai.ChatCompletionRequest
	if err := json.Unmarshal(b, &dec); err != nil {
		t.Fatalf("go-openai does not read it: %v", err)
	}
	if dec.Messages[2].ToolCalls[0].ID != "call_1" || dec.Messages[3].ToolCallID != "call_1" || dec.Messages[1].MultiContent[1].ImageURL.Detail != "low" {
		t.Errorf("go-openai reads %+v", dec.Messages)
	}

	r = Request{Messages: []Message{{Role: RoleUser, Content: "hi"}}, Temperature: &zero, MaxTokens: 16}
	b, _ = r.body("o3-mini", true)
	if want := `{"model":"o3-mini","messages":[{"role":"user","content":"hi"}],"max_completion_tokens":16,"temperature":0}`; string(b) != want {
		t.Errorf("body\n got %s\nwant %s", b, want)
	}
}

// An answer is decoded once, in every shape servers send: content null or
// in parts, tool-call arguments as a string or as the object itself,
// logprobs; an error object in a 200 and a body that is no completion are
// errors saying what came.
func TestDecodeChat(t *testing.T) {
	for _, tt := range []struct {
		name, body string
		want       Response
		err        string
	}{
		{"plain", `{"choices":[{"message":{"content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1}}`,
			Response{Content: "hi", FinishReason: "stop", Usage: Usage{3, 1}}, ""},
		{"refusal with null content", `{"choices":[{"message":{"content":null,"refusal":"No."},"finish_reason":"stop"}]}`,
			Response{Refusal: "No.", FinishReason: "stop"}, ""},
		{"content in parts", `{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]}`,
			Response{Content: "ab"}, ""},
		{"arguments as a string and as an object", `{"choices":[{"message":{"tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},{"id":"2","type":"function","function":{"name":"g","arguments":{"b": 2}}}]},"finish_reason":"tool_calls"}]}`,
			Response{ToolCalls: []ToolCall{{ID: "1", Name: "f", Arguments: `{"a":1}`}, {ID: "2", Name: "g", Arguments: `{"b": 2}`}}, FinishReason: "tool_calls"}, ""},
		{"logprobs", `{"choices":[{"message":{"content":"ok"},"logprobs":{"content":[{"token":"ok","logprob":0}]}}]}`,
			Response{Content: "ok", Tokens: []TokenProb{{Token: "ok", Prob: 1}}}, ""},
		{"an error in a 200", `{"error":{"code":502,"message":"Provider returned error"}}`, Response{}, "error in a 200 answer (code 502): Provider returned error"},
		{"no choices", `{"id":"x","choices":[]}`, Response{}, "not a chat completion (no choices in the answer)"},
		{"not JSON", `<html>Bad gateway</html>`, Response{}, "not a chat completion (invalid character '<' looking for beginning of value): <html>Bad gateway</html>"},
	} {
		got, err := decodeChat([]byte(tt.body))
		if tt.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.name, diff)
		}
	}
}

// An error answer is told in the server's own words, whatever shape it
// has, on one line and bounded; never a formatting verb.
func TestErrorText(t *testing.T) {
	long := strings.Repeat("é", 400)
	for _, tt := range []struct{ body, msg, code string }{
		{`{"error":{"message":"Incorrect API key provided.","type":"invalid_request_error","code":"invalid_api_key"}}`, "Incorrect API key provided.", "invalid_api_key"},
		{`{"error":{"message":"filtered","code":"content_filter","innererror":{"code":"ResponsibleAIPolicyViolation"}}}`, "filtered", "content_filter ResponsibleAIPolicyViolation"},
		{`{"error":"rate limited by the gateway"}`, "rate limited by the gateway", ""},
		{`{"object":"error","message":"maximum context length is 8192","type":"BadRequestError","code":400}`, "maximum context length is 8192", "400"},
		{`{"detail":"Not Found"}`, "Not Found", ""},
		{`{"detail":[{"loc":["body"],"msg":"field required"}]}`, `[{"loc":["body"],"msg":"field required"}]`, ""},
		{"<html>\n<body>502 Bad Gateway</body>\n</html>", "<html> <body>502 Bad Gateway</body> </html>", ""},
		{``, "(empty body)", ""},
		{`{"error":{"message":"` + long + `"}}`, strings.Repeat("é", 150) + "…", ""},
	} {
		msg, code := errorText([]byte(tt.body))
		if msg != tt.msg || code != tt.code {
			t.Errorf("%q: %q %q, want %q %q", tt.body, msg, code, tt.msg, tt.code)
		}
		if strings.Contains(msg, "%!") {
			t.Errorf("a formatting verb in %q", msg)
		}
	}
}
