package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The wire shapes of OpenAI's chat completions API: what kommbridge sends
// and the part of the answer it reads. A Request becomes one chatRequest,
// encoded once; an answer is decoded once into chatResponse.

type chatRequest struct {
	Model               string          `json:"model"`
	Messages            []chatMessage   `json:"messages"`
	MaxTokens           int             `json:"max_tokens,omitempty"`
	MaxCompletionTokens int             `json:"max_completion_tokens,omitempty"`
	Temperature         *float32        `json:"temperature,omitempty"` // a set 0 is sent as 0
	ResponseFormat      *responseFormat `json:"response_format,omitempty"`
	Tools               []chatTool      `json:"tools,omitempty"`
	LogProbs            bool            `json:"logprobs,omitempty"`
}

type chatMessage struct {
	Role string `json:"role"`
	// Content is a string, or the parts of a message with images; absent
	// on an assistant message that only calls tools.
	Content    any            `json:"content,omitempty"`
	ToolCalls  []wireToolCall `json:"tool_calls,omitempty"`
	ToolCallID string         `json:"tool_call_id,omitempty"`
}

type contentPart struct {
	Type     string    `json:"type"` // text or image_url
	Text     string    `json:"text,omitempty"`
	ImageURL *imageURL `json:"image_url,omitempty"`
}

type imageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

type responseFormat struct {
	Type       string      `json:"type"` // json_object or json_schema
	JSONSchema *jsonSchema `json:"json_schema,omitempty"`
}

type jsonSchema struct {
	Name   string          `json:"name"`
	Schema json.RawMessage `json:"schema"`
	Strict bool            `json:"strict"`
}

type chatTool struct {
	Type     string       `json:"type"` // function
	Function chatFunction `json:"function"`
}

type chatFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

type wireToolCall struct {
	ID       string           `json:"id,omitempty"`
	Type     string           `json:"type"` // function
	Function wireFunctionCall `json:"function"`
}

type wireFunctionCall struct {
	Name string `json:"name"`
	// Arguments is a JSON string holding the arguments' JSON; some
	// servers send the object itself, which is read as its text.
	Arguments flexArguments `json:"arguments"`
}

// flexArguments is a tool call's arguments: a JSON string (as OpenAI
// sends them), or the object itself (as some compatible servers do).
type flexArguments string

func (a *flexArguments) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = flexArguments(s)
	case string(b) == "null":
		*a = ""
	default:
		*a = flexArguments(b)
	}
	return nil
}

func (a flexArguments) MarshalJSON() ([]byte, error) { return json.Marshal(string(a)) }

// body is the chat request for r sent to model, the token limit under
// max_completion_tokens when completionTokens is set.
func (r *Request) body(model string, completionTokens bool) ([]byte, error) {
	out := chatRequest{Model: model, Messages: make([]chatMessage, len(r.Messages)), Temperature: r.Temperature, LogProbs: r.LogProbs}
	if completionTokens {
		out.MaxCompletionTokens = r.MaxTokens
	} else {
		out.MaxTokens = r.MaxTokens
	}
	for i, m := range r.Messages {
		cm := chatMessage{Role: m.Role, ToolCallID: m.ToolCallID}
		switch {
		case len(m.Parts) > 0:
			parts := make([]contentPart, len(m.Parts))
			for j, p := range m.Parts {
				if p.ImageURL != "" {
					parts[j] = contentPart{Type: "image_url", ImageURL: &imageURL{URL: p.ImageURL, Detail: p.Detail}}
				} else {
					parts[j] = contentPart{Type: "text", Text: p.Text}
				}
			}
			cm.Content = parts
		case m.Content != "" || len(m.ToolCalls) == 0:
			cm.Content = m.Content
		}
		for _, tc := range m.ToolCalls {
			cm.ToolCalls = append(cm.ToolCalls, wireToolCall{ID: tc.ID, Type: "function", Function: wireFunctionCall{Name: tc.Name, Arguments: flexArguments(tc.Arguments)}})
		}
		out.Messages[i] = cm
	}
	switch r.Format {
	case ResponseJSONObject:
		out.ResponseFormat = &responseFormat{Type: "json_object"}
	case ResponseJSONSchema:
		out.ResponseFormat = &responseFormat{Type: "json_schema", JSONSchema: &jsonSchema{Name: r.SchemaName, Schema: r.Schema, Strict: true}}
	}
	for _, t := range r.Tools {
		out.Tools = append(out.Tools, chatTool{Type: "function", Function: chatFunction(t)})
	}
	return json.Marshal(out)
}

// chatResponse is the part of a chat completion kommbridge reads, and the
// error object some servers send in a 200 answer (OpenRouter passes an
// upstream failure that way).
type chatResponse struct {
	Choices []struct {
		Message struct {
			Content   any            `json:"content"` // see contentText
			Refusal   string         `json:"refusal"`
			ToolCalls []wireToolCall `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
		LogProbs     *struct {
			Content []struct {
				Token   string  `json:"token"`
				LogProb float64 `json:"logprob"`
			} `json:"content"`
		} `json:"logprobs"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error *errorObject `json:"error"`
}

// contentText is a message's content as text: a string, null, or a list
// of parts whose texts are joined (some servers answer with parts).
// Decoded into an interface, a string is read in one pass: the common
// case, and what BenchmarkDecodeChat measures.
func contentText(v any) string {
	switch c := v.(type) {
	case string:
		return c
	case []any:
		var s strings.Builder
		for _, p := range c {
			if m, ok := p.(map[string]any); ok {
				if text, ok := m["text"].(string); ok {
					s.WriteString(text)
				}
			}
		}
		return s.String()
	}
	return ""
}

// errNoChoices is an answer with neither choices nor an error object.
var errNoChoices = errors.New("no choices in the answer")

// decodeChat reads a 200 answer.
func decodeChat(body []byte) (Response, error) {
	var r chatResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return Response{}, &malformed{err: err, body: body}
	}
	if len(r.Choices) == 0 {
		if r.Error != nil {
			return Response{}, &bodyError{obj: *r.Error}
		}
		return Response{}, &malformed{err: errNoChoices, body: body}
	}
	ch := r.Choices[0]
	out := Response{
		Content:      contentText(ch.Message.Content),
		Refusal:      ch.Message.Refusal,
		FinishReason: ch.FinishReason,
		Usage:        Usage{PromptTokens: r.Usage.PromptTokens, CompletionTokens: r.Usage.CompletionTokens},
	}
	for _, tc := range ch.Message.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: string(tc.Function.Arguments)})
	}
	if ch.LogProbs != nil {
		out.Tokens = make([]TokenProb, len(ch.LogProbs.Content))
		for i, lp := range ch.LogProbs.Content {
			out.Tokens[i] = TokenProb{Token: lp.Token, Prob: math.Exp(lp.LogProb)}
		}
	}
	return out, nil
}

// errorObject is an error as OpenAI-compatible servers write it:
// {"error": {"message", "type", "code", "param"}}; code may be a string
// or a number.
type errorObject struct {
	Message    string          `json:"message"`
	Type       string          `json:"type"`
	Code       json.RawMessage `json:"code"`
	InnerError *struct {
		Code string `json:"code"`
	} `json:"innererror"`
}

// code is the error's code as text ("" when none), with Azure's inner
// code after it.
func (e errorObject) code() string {
	c := strings.Trim(string(e.Code), `"`)
	if c == "null" {
		c = ""
	}
	if e.InnerError != nil && e.InnerError.Code != "" {
		c = strings.TrimSpace(c + " " + e.InnerError.Code)
	}
	return c
}

// status is the HTTP status the code stands for, 0 when it names none.
func (e errorObject) status() int {
	n, err := strconv.Atoi(strings.Trim(string(e.Code), `"`))
	if err != nil {
		return 0
	}
	return n
}

// errorText reads what went wrong from an error answer's body, whatever
// its shape: OpenAI's {"error": {"message"}}, {"error": "text"}, vLLM's
// and others' {"message"} or {"detail"}, else the body's first bytes,
// on one line. code is the error's code, "" when none.
func errorText(body []byte) (msg, code string) {
	var doc struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
		Code    json.RawMessage `json:"code"`
	}
	if json.Unmarshal(body, &doc) == nil {
		var obj errorObject
		var s string
		switch {
		case len(doc.Error) > 0 && doc.Error[0] == '{' && json.Unmarshal(doc.Error, &obj) == nil && obj.Message != "":
			return oneLine(obj.Message), obj.code()
		case len(doc.Error) > 0 && json.Unmarshal(doc.Error, &s) == nil && s != "":
			return oneLine(s), ""
		case doc.Message != "":
			return oneLine(doc.Message), strings.Trim(string(doc.Code), `"`)
		case len(doc.Detail) > 0:
			if json.Unmarshal(doc.Detail, &s) == nil {
				return oneLine(s), ""
			}
			return oneLine(string(doc.Detail)), ""
		}
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return "(empty body)", ""
	}
	return oneLine(string(body)), ""
}

// maxErrorText bounds the text kept of an error answer, in bytes.
const maxErrorText = 300

// oneLine is s on one line, at most maxErrorText bytes (cut on a rune).
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxErrorText {
		return s
	}
	cut := maxErrorText
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// malformed is a 200 answer that is not a chat completion.
type malformed struct {
	err  error
	body []byte
}

func (e *malformed) Error() string {
	return fmt.Sprintf("not a chat completion (%v): %s", e.err, oneLine(string(e.body)))
}

func (e *malformed) Unwrap() error { return e.err }

// bodyError is an error object a server sent in a 200 answer.
type bodyError struct{ obj errorObject }

func (e *bodyError) Error() string {
	if c := e.obj.code(); c != "" {
		return fmt.Sprintf("error in a 200 answer (code %s): %s", c, oneLine(e.obj.Message))
	}
	return "error in a 200 answer: " + oneLine(e.obj.Message)
}
