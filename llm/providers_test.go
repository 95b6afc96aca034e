package llm_test

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// Provider answers the happy path never meets, each classified on
// purpose.
func TestProviderAnswers(t *testing.T) {
	tests := []struct {
		name      string
		reply     llmtest.Reply
		wantErr   error
		wantText  string
		wantRef   string
		wantTool  string
		wantCalls int
	}{
		{"Azure prompt filter", llmtest.Reply{Status: 400, Body: `{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation"}}}`},
			llm.ErrFiltered, "", "", "", 1},
		{"OpenAI context overflow", llmtest.Reply{Status: 400, Body: `{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130512 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`},
			llm.ErrContextOverflow, "", "", "", 1},
		{"vLLM context overflow", llmtest.Reply{Status: 400, Body: `{"object":"error","message":"This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.","type":"BadRequestError","param":null,"code":400}`},
			llm.ErrContextOverflow, "", "", "", 1},
		{"OpenRouter error in a 200", llmtest.Reply{Body: `{"error":{"code":502,"message":"Provider returned error","metadata":{"provider_name":"X"}}}`},
			llm.ErrUnavailable, "", "", "", 3},
		{"OpenRouter overflow in a 200", llmtest.Reply{Body: `{"error":{"code":400,"message":"This endpoint's maximum context length is 8192 tokens."}}`},
			llm.ErrContextOverflow, "", "", "", 1},
		{"refusal", llmtest.Reply{Body: `{"id":"c","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"refusal":"I'm sorry, I can't help with that."},"finish_reason":"stop"}]}`},
			nil, "", "I'm sorry, I can't help with that.", "", 1},
		{"tool arguments as an object", llmtest.Reply{Body: `{"id":"c","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"","tool_calls":[{"id":"1","type":"function","function":{"name":"handoff_to_human","arguments":{"reason":"angry"}}}]},"finish_reason":"tool_calls"}]}`},
			nil, "", "", `{"reason":"angry"}`, 1},
		{"extras and no usage", llmtest.Reply{Body: `{"id":"c","object":"chat.completion","model":"m","x_groq":{"id":"q"},"provider":"Groq","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}],"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop","content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}`},
			nil, "hi", "", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := llmtest.New(t)
			fake.Default(func(llmtest.Request) llmtest.Reply { return tt.reply })
			c := newClient(t, 2, fake.URL())
			resp, err := c.Complete(within(t, 10*time.Second), hello)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if resp.Content != tt.wantText || resp.Refusal != tt.wantRef {
				t.Errorf("content %q refusal %q", resp.Content, resp.Refusal)
			}
			if tt.wantTool != "" && (len(resp.ToolCalls) != 1 || resp.ToolCalls[0].Arguments != tt.wantTool) {
				t.Errorf("tool calls %+v", resp.ToolCalls)
			}
			if fake.Calls() != tt.wantCalls {
				t.Errorf("calls %d, want %d (retried only what may pass)", fake.Calls(), tt.wantCalls)
			}
			if c.Open(0) {
				t.Error("the breaker counted it")
			}
		})
	}
}

// The token limit field: by family without a flag, and learned from an
// endpoint that names the one it wants.
func TestTokenLimitField(t *testing.T) {
	fake := llmtest.New(t)
	c, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{{BaseURL: fake.URL(), APIType: "openai", Model: "gpt-4o-mini"}}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	req := hello
	req.MaxTokens = 50
	for model, wantCompletion := range map[string]bool{"o3-mini": true, "openai/gpt-5-mini": true, "gpt-4o": false, "llama3.1:8b": false} {
		req.Model = model
		if _, err := c.Complete(within(t, 5*time.Second), req); err != nil {
			t.Fatal(err)
		}
		//lint:ignore SA1019 the fake reports what was sent
		got := fake.Last(t).Chat.MaxCompletionTokens == 50 && fake.Last(t).Chat.MaxTokens == 0
		if got != wantCompletion {
			t.Errorf("%s: max_completion_tokens %v, want %v", model, got, wantCompletion)
		}
	}
	// A new model name the families do not know: the endpoint says so.
	fake.Enqueue(llmtest.Reply{Status: 400, Body: `{"error":{"message":"Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.","type":"invalid_request_error","param":"max_tokens","code":"unsupported_parameter"}}`})
	req.Model = "future-reasoner"
	if _, err := c.Complete(within(t, 5*time.Second), req); err != nil {
		t.Fatalf("after learning the field: %v", err)
	}
	if fake.Last(t).Chat.MaxCompletionTokens != 50 {
		t.Error("the second try did not send max_completion_tokens")
	}
	n := fake.Calls()
	c.Complete(within(t, 5*time.Second), req)
	if fake.Calls() != n+1 || fake.Last(t).Chat.MaxCompletionTokens != 50 {
		t.Error("the field was not remembered for the endpoint")
	}
}
