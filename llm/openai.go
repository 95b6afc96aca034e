package llm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// The translation between kommbridge's model types and go-openai's, and
// the HTTP client go-openai calls through.

// throttleDoer is the HTTP client go-openai calls through. A 429 or 503
// answer, which may say when to come back, becomes a *throttled error
// carrying its Retry-After, since go-openai's own errors drop the headers.
// A 200 answer is read here first (see normalize): providers' variations
// that go-openai would misread are settled before it decodes.
type throttleDoer struct{ c *http.Client }

func (d throttleDoer) Do(r *http.Request) (*http.Response, error) {
	useBody(r)
	resp, err := d.c.Do(r)
	if err != nil {
		return resp, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		// One buffer of the declared length (a hint only, so at most
		// 1 MB of it), with room to see the end.
		buf := bytes.NewBuffer(make([]byte, 0, min(max(resp.ContentLength, 0), 1<<20)+bytes.MinRead))
		_, err := buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		body, err := normalize(buf.Bytes())
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		resp.ContentLength = int64(len(body))
		return resp, nil
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
	default:
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	t := &throttled{status: resp.StatusCode, after: retryAfter(resp.Header, time.Now()), msg: strings.TrimSpace(string(body))}
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		t.msg = e.Error.Message
	}
	return nil, t
}

var objectArguments = regexp.MustCompile(`"arguments"\s*:\s*[{\[]`)

// normalize settles what providers vary in a 200 answer before go-openai
// decodes it: an error object instead of choices (OpenRouter passes an
// upstream failure that way) becomes a *bodyError, and tool-call arguments
// sent as a JSON object rather than a string are turned into the string.
func normalize(body []byte) ([]byte, error) {
	if bytes.Contains(body, []byte(`"error"`)) {
		var e struct {
			Choices json.RawMessage `json:"choices"`
			Error   *struct {
				Code    any    `json:"code"`
				Message string `json:"message"`
				Type    string `json:"type"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != nil && (len(e.Choices) == 0 || string(e.Choices) == "null" || string(e.Choices) == "[]") {
			return nil, &bodyError{code: e.Error.Code, msg: e.Error.Message, typ: e.Error.Type}
		}
	}
	if !bytes.Contains(body, []byte(`"arguments"`)) || !objectArguments.Match(body) {
		return body, nil
	}
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil {
		return body, nil
	}
	choices, _ := doc["choices"].([]any)
	for _, c := range choices {
		msg, _ := c.(map[string]any)["message"].(map[string]any)
		calls, _ := msg["tool_calls"].([]any)
		for _, tc := range calls {
			fn, _ := tc.(map[string]any)["function"].(map[string]any)
			if args, ok := fn["arguments"]; ok {
				if _, isString := args.(string); !isString {
					raw, _ := json.Marshal(args)
					fn["arguments"] = string(raw)
				}
			}
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return body, nil
	}
	return out, nil
}

// bodyError is an error object a provider sent in a 200 answer.
type bodyError struct {
	code     any
	msg, typ string
}

func (e *bodyError) Error() string {
	return fmt.Sprintf("error in a 200 answer (code %v): %s", e.code, e.msg)
}

// status is the HTTP status the error's code stands for, 0 when it names none.
func (e *bodyError) status() int {
	switch c := e.code.(type) {
	case float64:
		return int(c)
	case string:
		if n, err := strconv.Atoi(c); err == nil {
			return n
		}
	}
	return 0
}

// throttled is a 429 or 503 answer and when the endpoint asked to be
// called again (0 when it did not say).
type throttled struct {
	status int
	after  time.Duration
	msg    string
}

func (t *throttled) Error() string {
	return fmt.Sprintf("HTTP %d: %s", t.status, t.msg)
}

func retryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func toOpenAI(r Request, model string, completionTokens bool) openai.ChatCompletionRequest {
	out := openai.ChatCompletionRequest{
		Model:    model,
		Messages: make([]openai.ChatCompletionMessage, len(r.Messages)),
		LogProbs: r.LogProbs,
	}
	if completionTokens {
		out.MaxCompletionTokens = r.MaxTokens
	} else {
		//lint:ignore SA1019 max_tokens is what most OpenAI-compatible servers understand
		out.MaxTokens = r.MaxTokens
	}
	if r.Temperature != nil {
		out.Temperature = *r.Temperature
		if out.Temperature == 0 {
			// go-openai omits a zero temperature; the smallest positive
			// value is as deterministic in practice.
			out.Temperature = math.SmallestNonzeroFloat32
		}
	}
	for i, m := range r.Messages {
		om := openai.ChatCompletionMessage{Role: m.Role}
		if len(m.Parts) > 0 {
			om.MultiContent = make([]openai.ChatMessagePart, len(m.Parts))
			for j, p := range m.Parts {
				if p.ImageURL != "" {
					om.MultiContent[j] = openai.ChatMessagePart{Type: openai.ChatMessagePartTypeImageURL,
						ImageURL: &openai.ChatMessageImageURL{URL: p.ImageURL, Detail: openai.ImageURLDetail(p.Detail)}}
				} else {
					om.MultiContent[j] = openai.ChatMessagePart{Type: openai.ChatMessagePartTypeText, Text: p.Text}
				}
			}
		} else {
			om.Content = m.Content
		}
		out.Messages[i] = om
	}
	switch r.Format {
	case ResponseJSONObject:
		out.ResponseFormat = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONObject}
	case ResponseJSONSchema:
		out.ResponseFormat = &openai.ChatCompletionResponseFormat{
			Type:       openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{Name: r.SchemaName, Schema: r.Schema, Strict: true},
		}
	}
	for _, t := range r.Tools {
		out.Tools = append(out.Tools, openai.Tool{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
			Name: t.Name, Description: t.Description, Parameters: t.Parameters,
		}})
	}
	return out
}

func fromOpenAI(r openai.ChatCompletionResponse) Response {
	ch := r.Choices[0]
	out := Response{
		Content:      ch.Message.Content,
		Refusal:      ch.Message.Refusal,
		FinishReason: string(ch.FinishReason),
		Usage:        Usage{PromptTokens: r.Usage.PromptTokens, CompletionTokens: r.Usage.CompletionTokens},
	}
	for _, tc := range ch.Message.ToolCalls {
		out.ToolCalls = append(out.ToolCalls, ToolCall{Name: tc.Function.Name, Arguments: tc.Function.Arguments})
	}
	if ch.LogProbs != nil {
		out.Tokens = make([]TokenProb, len(ch.LogProbs.Content))
		for i, lp := range ch.LogProbs.Content {
			out.Tokens[i] = TokenProb{Token: lp.Token, Prob: math.Exp(lp.LogProb)}
		}
	}
	return out
}
