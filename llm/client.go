package llm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.uber.org/zap"
)

// Endpoint is one OpenAI-compatible API.
type Endpoint struct {
	BaseURL    string
	APIKey     string
	APIType    string // "openai" (also for every compatible server) or "azure"
	APIVersion string // azure only
	Model      string
	// MaxCompletionTokens sends the token limit as max_completion_tokens
	// (OpenAI reasoning models) instead of max_tokens.
	MaxCompletionTokens bool
}

// Config is how the Client calls its endpoints.
type Config struct {
	// Endpoints are tried in order: the primary, then the fallbacks.
	Endpoints []Endpoint
	// MaxRetries is the number of retries per endpoint after the first call,
	// made only while the deadline leaves room.
	MaxRetries int
	// MaxConcurrency bounds the calls in flight; 0 means no bound.
	MaxConcurrency int
	// BreakerFailures consecutive retryable failures skip an endpoint for
	// BreakerCooldown; 0 turns the breaker off.
	BreakerFailures int
	BreakerCooldown time.Duration
	// HTTPClient makes the calls; nil means a client with sensible pooling.
	HTTPClient *http.Client
	// Observer, when set, is told of every attempt.
	Observer Observer
	// Now is the breaker's clock; nil means time.Now.
	Now func() time.Time
}

// Observer hears of each attempt; implementations must be fast and safe
// for concurrent use.
type Observer interface {
	Attempt(a Attempt)
}

// Attempt is one call to one endpoint.
type Attempt struct {
	Endpoint string
	Model    string
	// Retry is true for a second or later call to the same endpoint;
	// Fallback for any call to an endpoint after the first.
	Retry    bool
	Fallback bool
	Duration time.Duration
	Err      error
}

// Client calls chat completions with retries, fallbacks and a breaker.
// It is safe for concurrent use.
type Client struct {
	endpoints  []*endpoint
	maxRetries int
	sem        chan struct{}
	observer   Observer
	log        *zap.Logger
	now        func() time.Time
}

type endpoint struct {
	name    string // host, for logs and metrics
	model   string
	newer   bool // max_completion_tokens
	azure   bool
	client  *openai.Client
	breaker breaker
}

// New builds a Client for cfg.
func New(cfg Config, log *zap.Logger) (*Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("llm: no endpoint")
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
			ForceAttemptHTTP2:   true,
		}}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Client{maxRetries: cfg.MaxRetries, observer: cfg.Observer, log: log, now: cfg.Now}
	if cfg.MaxConcurrency > 0 {
		c.sem = make(chan struct{}, cfg.MaxConcurrency)
	}
	for _, e := range cfg.Endpoints {
		var oc openai.ClientConfig
		if e.APIType == "azure" {
			oc = openai.DefaultAzureConfig(e.APIKey, e.BaseURL)
			oc.APIVersion = e.APIVersion
			oc.AzureModelMapperFunc = func(model string) string { return model }
		} else {
			oc = openai.DefaultConfig(e.APIKey)
			oc.BaseURL = e.BaseURL
		}
		oc.HTTPClient = hintingDoer{hc}
		name := e.BaseURL
		if u, err := url.Parse(e.BaseURL); err == nil && u.Host != "" {
			name = u.Host
		}
		c.endpoints = append(c.endpoints, &endpoint{
			name:    name,
			model:   e.Model,
			newer:   e.MaxCompletionTokens,
			azure:   e.APIType == "azure",
			client:  openai.NewClientWithConfig(oc),
			breaker: breaker{threshold: int64(cfg.BreakerFailures), cooldown: cfg.BreakerCooldown},
		})
	}
	return c, nil
}

// Complete runs req against the endpoints in order until one answers or
// ctx's deadline leaves no room. The primary uses req.Model when set.
// Errors match ErrTimeout, ErrUnavailable, ErrRejected or ErrMalformed.
func (c *Client) Complete(ctx context.Context, req Request) (Response, error) {
	if c.sem != nil {
		select {
		case c.sem <- struct{}{}:
			defer func() { <-c.sem }()
		case <-ctx.Done():
			return Response{}, &Error{Kind: ErrTimeout, Endpoint: "queue", Err: fmt.Errorf("waiting for one of %d model call slots: %w", cap(c.sem), ctx.Err())}
		}
	}
	var last *Error
	attempts := 0
	for i, ep := range c.endpoints {
		model := ep.model
		if i == 0 && req.Model != "" {
			model = req.Model
		}
		if !ep.breaker.allow(c.now()) {
			last = &Error{Kind: ErrUnavailable, Endpoint: ep.name, Err: errors.New("skipped: circuit open after repeated failures")}
			continue
		}
		creq := toOpenAI(req, model, ep.newer)
		for try := 0; try <= c.maxRetries; try++ {
			attempts++
			var hint retryHint
			start := c.now()
			resp, err := ep.client.CreateChatCompletion(context.WithValue(ctx, hintKey{}, &hint), creq)
			if c.observer != nil {
				c.observer.Attempt(Attempt{Endpoint: ep.name, Model: model, Retry: try > 0, Fallback: i > 0, Duration: c.now().Sub(start), Err: err})
			}
			if err == nil {
				if len(resp.Choices) == 0 {
					err = errors.New("no choices in the response")
				} else {
					ep.breaker.success()
					out := fromOpenAI(resp)
					out.Endpoint, out.Model, out.Attempts = ep.name, model, attempts
					return out, nil
				}
			}
			e := classify(ctx, ep.name, err)
			if e.Kind == ErrTimeout {
				ep.breaker.failure(c.now())
				return Response{}, e
			}
			last = e
			if !e.retryable() {
				return Response{}, e
			}
			ep.breaker.failure(c.now())
			if try == c.maxRetries {
				break
			}
			wait := backoff(try)
			if hint.after > 0 {
				wait = hint.after
			}
			if !c.roomFor(ctx, wait) {
				c.log.Debug("no room to retry", zap.String("endpoint", ep.name), zap.Duration("wait", wait))
				break // try the next endpoint now, if any
			}
			c.log.Debug("retrying", zap.String("endpoint", ep.name), zap.Int("status", e.Status), zap.Duration("wait", wait))
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return Response{}, &Error{Kind: ErrTimeout, Endpoint: ep.name, Err: ctx.Err()}
			}
		}
	}
	if last == nil {
		last = &Error{Kind: ErrUnavailable, Endpoint: "none", Err: errors.New("no endpoint available")}
	}
	return Response{}, last
}

// minCall is the least time worth starting a call with.
const minCall = 50 * time.Millisecond

// roomFor reports whether waiting d still leaves time for a call.
func (c *Client) roomFor(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || dl.Sub(c.now()) > d+minCall
}

// backoff is exponential with full jitter: 0..200ms, 0..400ms, ... up to 4s.
func backoff(try int) time.Duration {
	ceiling := 200 * time.Millisecond << min(try, 5)
	ceiling = min(ceiling, 4*time.Second)
	return time.Duration(rand.Int64N(int64(ceiling)) + 1)
}

// breaker opens after threshold consecutive failures and lets calls
// through again after cooldown; one more failure then re-opens it.
type breaker struct {
	threshold int64
	cooldown  time.Duration
	failures  atomic.Int64
	openUntil atomic.Int64 // unix nanoseconds
}

func (b *breaker) allow(now time.Time) bool {
	return b.threshold == 0 || now.UnixNano() >= b.openUntil.Load()
}

func (b *breaker) success() { b.failures.Store(0) }

func (b *breaker) failure(now time.Time) {
	if b.threshold == 0 {
		return
	}
	if b.failures.Add(1) >= b.threshold {
		b.openUntil.Store(now.Add(b.cooldown).UnixNano())
	}
}

// Open reports whether the endpoint at index i is being skipped.
func (c *Client) Open(i int) bool { return !c.endpoints[i].breaker.allow(c.now()) }

// Endpoints names the endpoints in order.
func (c *Client) Endpoints() []string {
	names := make([]string, len(c.endpoints))
	for i, e := range c.endpoints {
		names[i] = e.name
	}
	return names
}

// retryHint carries Retry-After from the HTTP layer up to Complete.
type retryHint struct{ after time.Duration }

type hintKey struct{}

// hintingDoer records Retry-After (or OpenAI's retry-after-ms) of 429 and
// 503 answers in the request's retryHint.
type hintingDoer struct{ c *http.Client }

func (d hintingDoer) Do(r *http.Request) (*http.Response, error) {
	resp, err := d.c.Do(r)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if h, ok := r.Context().Value(hintKey{}).(*retryHint); ok {
			h.after = retryAfter(resp.Header, time.Now())
		}
	}
	return resp, nil
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
	case FormatJSONObject:
		out.ResponseFormat = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONObject}
	case FormatJSONSchema:
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
