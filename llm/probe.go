package llm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
)

// Features is what Probe found an endpoint honours for a model.
type Features struct {
	Endpoint, Model string
	JSONSchema      bool // response_format json_schema, strict, answered as asked
	JSONObject      bool // response_format json_object, answered with an object
	Tools           bool // a function called when asked to
	LogProbs        bool // token log probabilities returned
	Images          bool // an image part accepted
	// CompletionTokens: the endpoint wants max_completion_tokens.
	CompletionTokens bool
	// Calls and Tokens are what the probe spent.
	Calls, Tokens int
	// Err is set when the endpoint did not answer a plain request.
	Err error
}

// ProbeCalls is the most calls Probe makes, each asking for at most
// probeTokens completion tokens.
const (
	ProbeCalls  = 7
	probeTokens = 16
)

// onePixel is a 1x1 PNG, for the image probe.
const onePixel = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

// Probe asks the endpoint at index i, with a few tiny calls, which
// features it really honours for model ("" for the endpoint's): at most
// ProbeCalls calls of at most 16 completion tokens each. A feature counts
// only when the answer shows it, not merely when the request is accepted.
func (c *Client) Probe(ctx context.Context, i int, model string) Features {
	ep := c.endpoints[i]
	if model == "" {
		model = ep.model
	}
	f := Features{Endpoint: ep.name, Model: model}
	ask := func(r Request) (Response, error) {
		r.MaxTokens = probeTokens
		if len(r.Messages) == 0 {
			r.Messages = []Message{{Role: RoleUser, Content: "Reply with the single word ok."}}
		}
		f.Calls++
		body, err := r.body(model, f.CompletionTokens)
		if err != nil {
			return Response{}, err
		}
		resp, err := ep.chat(ctx, model, body)
		if err != nil {
			return Response{}, classify(ctx, ep.name, model, err)
		}
		f.Tokens += resp.Usage.PromptTokens + resp.Usage.CompletionTokens
		return resp, nil
	}
	_, err := ask(Request{})
	var e *Error
	if errors.As(err, &e) && e.Kind == ErrRejected && strings.Contains(strings.ToLower(e.Err.Error()), "max_completion_tokens") {
		f.CompletionTokens = true
		_, err = ask(Request{})
	}
	if err != nil {
		f.Err = err
		return f
	}
	isOK := func(resp Response) bool {
		var v struct {
			OK *bool `json:"ok"`
		}
		return json.Unmarshal([]byte(strings.TrimSpace(resp.Content)), &v) == nil && v.OK != nil
	}
	schema := json.RawMessage(`{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"],"additionalProperties":false}`)
	jsonAsk := []Message{{Role: RoleUser, Content: `Answer with the JSON object {"ok": true} and nothing else.`}}
	if resp, err := ask(Request{Messages: jsonAsk, Format: ResponseJSONSchema, SchemaName: "probe", Schema: schema}); err == nil {
		f.JSONSchema = isOK(resp)
	}
	if resp, err := ask(Request{Messages: jsonAsk, Format: ResponseJSONObject}); err == nil {
		f.JSONObject = isOK(resp)
	}
	tool := Tool{Name: "ping", Description: "Call this to answer.", Parameters: json.RawMessage(`{"type":"object","properties":{}}`)}
	if resp, err := ask(Request{Messages: []Message{{Role: RoleUser, Content: "Call the ping function now."}}, Tools: []Tool{tool}}); err == nil {
		f.Tools = len(resp.ToolCalls) > 0 && resp.ToolCalls[0].Name == "ping"
	}
	if resp, err := ask(Request{LogProbs: true}); err == nil {
		f.LogProbs = len(resp.Tokens) > 0
	}
	_, err = ask(Request{Messages: []Message{{Role: RoleUser, Parts: []Part{{Text: "What colour is this image? One word."}, {ImageURL: onePixel, Detail: "low"}}}}})
	f.Images = err == nil
	return f
}
