package llm

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
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
type throttleDoer struct{ c *http.Client }

func (d throttleDoer) Do(r *http.Request) (*http.Response, error) {
	resp, err := d.c.Do(r)
	if err != nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return resp, err
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
