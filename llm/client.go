package llm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
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
	// BreakerFailures consecutive failed calls (each with its retries) skip
	// an endpoint for BreakerCooldown, after which one probe at a time is
	// let through; 0 turns the breaker off. Only the endpoint's faults
	// count: 5xx, 429, network errors, unreadable bodies, and hangs.
	BreakerFailures int
	BreakerCooldown time.Duration
	// HTTPClient makes the calls; nil means a client with sensible pooling.
	HTTPClient *http.Client
	// Observer, when set, is told of every attempt.
	Observer Observer
	// Now is the deadline arithmetic's clock; nil means time.Now.
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
	tokens  tokenField
	azure   bool
	client  *openai.Client
	breaker *breaker
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
			// 5 KB per connection held while the model works, instead of
			// net/http's 8: a write is what costs (the kernel sends the
			// segment then), and a request whose headers and body fit the
			// write buffer goes in one, a larger one in two; a read only
			// copies, so a completion larger than 1 KB costs a second
			// read, which is cheap (see README, "Performance").
			ReadBufferSize:  1 << 10,
			WriteBufferSize: 4 << 10,
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
		oc.HTTPClient = throttleDoer{hc}
		name := EndpointName(e.BaseURL)
		c.endpoints = append(c.endpoints, &endpoint{
			name:    name,
			model:   e.Model,
			tokens:  tokenField{force: e.MaxCompletionTokens},
			azure:   e.APIType == "azure",
			client:  openai.NewClientWithConfig(oc),
			breaker: newBreaker(cfg.BreakerFailures, cfg.BreakerCooldown),
		})
	}
	return c, nil
}

// EndpointName is how logs, metrics and check name the endpoint at
// baseURL: its host (with port), or the URL when it has none.
func EndpointName(baseURL string) string {
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		return u.Host
	}
	return baseURL
}

// Complete runs req against the endpoints in order until one answers or
// ctx's deadline leaves no room. The primary uses req.Model when set.
// Errors match ErrTimeout, ErrUnavailable, ErrRejected or ErrMalformed for
// failures of the model, and ErrBusy or ErrNoTime when no call was made.
func (c *Client) Complete(ctx context.Context, req Request) (Response, error) {
	entered := c.now()
	release, err := c.slot(ctx)
	if err != nil {
		return Response{}, err
	}
	defer release()
	waited := c.now().Sub(entered)
	resp, err := c.complete(ctx, req)
	var e *Error
	if errors.As(err, &e) && e.Kind == ErrTimeout && queueAte(ctx, entered, waited) {
		// The slot came so late that the model had too little time: that
		// is overload, not a model failure.
		return Response{}, &Error{Kind: ErrBusy, Endpoint: "queue", Err: fmt.Errorf("a model call slot (llm.max_concurrency) freed only after %v, too late to answer: %v", waited.Round(time.Millisecond), e.Err)}
	}
	return resp, err
}

// queueAte reports whether waiting for a slot took more than half of the
// time ctx had when the call was asked for.
func queueAte(ctx context.Context, entered time.Time, waited time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && waited > dl.Sub(entered)/2
}

// complete is Complete once a slot is held.
func (c *Client) complete(ctx context.Context, req Request) (Response, error) {
	var last *Error
	attempts, skipped := 0, -1
	for i, ep := range c.endpoints {
		done, ok := ep.breaker.allow()
		if !ok {
			if skipped < 0 {
				skipped = i
			}
			last = &Error{Kind: ErrUnavailable, Endpoint: ep.name, Err: errors.New("skipped: circuit open after repeated failures")}
			continue
		}
		resp, tries, e := c.call(ctx, i, &req, done)
		attempts += tries
		if e == nil {
			resp.Attempts = attempts
			return resp, nil
		}
		if e.Kind == ErrNoTime && attempts > 0 {
			break // the earlier endpoint's failure is the one to report
		}
		last = e
		if e.Kind == ErrTimeout || e.Kind == ErrNoTime || e.refused() {
			break // no time for another endpoint, or a request none will take
		}
	}
	if attempts == 0 && skipped >= 0 {
		// Every endpoint is skipped: a breaker picks between endpoints, it
		// never refuses the last chance. The first skipped one is called
		// anyway, and its success closes its breaker.
		resp, tries, e := c.call(ctx, skipped, &req, c.endpoints[skipped].breaker.bypass())
		if e == nil {
			resp.Attempts = tries
			return resp, nil
		}
		last = e
	}
	if last == nil {
		last = &Error{Kind: ErrUnavailable, Endpoint: "none", Err: errors.New("no endpoint available")}
	}
	failed := *last
	failed.Attempts = attempts
	return Response{}, &failed
}

// errSpent is a call not made: the budget had run out before it.
var errSpent = errors.New("the reply budget was spent before the model could be called")

// slot takes one of the MaxConcurrency call slots, waiting while ctx
// allows; the func gives it back. A call that could not start in time is
// ErrNoTime (the deadline had passed) or ErrBusy (every slot stayed taken).
func (c *Client) slot(ctx context.Context) (func(), error) {
	if !c.roomFor(ctx, 0) {
		return nil, &Error{Kind: ErrNoTime, Endpoint: "deadline", Err: errSpent}
	}
	if c.sem == nil {
		return func() {}, nil
	}
	select {
	case c.sem <- struct{}{}:
		return func() { <-c.sem }, nil
	case <-ctx.Done():
		return nil, &Error{Kind: ErrBusy, Endpoint: "queue", Err: fmt.Errorf("all %d model call slots (llm.max_concurrency) stayed taken: %w", cap(c.sem), ctx.Err())}
	}
}

// call is one call to the endpoint at index i: the first try and the
// retries tryAgain allows. It tells done, from ep's breaker, one outcome,
// whatever the number of tries. The primary uses req.Model when set.
//
// The caller's goroutine waits for the model below call, so call keeps a
// small frame: go-openai's request and response live in chat, and what
// happens between tries in functions of their own.
func (c *Client) call(ctx context.Context, i int, req *Request, done func(error)) (Response, int, *Error) {
	ep := c.endpoints[i]
	model := ep.model
	if i == 0 && req.Model != "" {
		model = req.Model
	}
	completion := ep.tokens.completion(model)
	body := withBody(ctx, encodeBody(*req, model, completion))
	var last *Error
	relearned := false
	for try := 0; ; try++ {
		if !c.roomFor(ctx, 0) {
			return Response{}, try, c.noRoom(ctx, ep, last, done)
		}
		start := c.now()
		out, err := ep.chatApart(body, model)
		took := c.now().Sub(start)
		if err != nil {
			last = classify(ctx, ep.name, err)
		}
		c.attempt(ep, model, try, i > 0, took, last, err)
		if err == nil {
			done(nil)
			out.Endpoint, out.Model = ep.name, model
			return out, try + 1, nil
		}
		if !relearned && ep.tokens.learn(last, completion) {
			// The endpoint named the token limit field it wants: send that
			// one now, and from now on.
			relearned, completion = true, !completion
			body = withBody(ctx, encodeBody(*req, model, completion))
			try--
			continue
		}
		if !c.again(ctx, ep, last, try, took, done) {
			return Response{}, try + 1, last
		}
	}
}

// chatApart is chat on a goroutine of its own, which the caller waits
// for. The caller's stack is deep (the webhook's whole way down) and a
// stack's size is a power of two; waiting here, above go-openai and
// net/http, it stays at 16 KB where it would grow to 32 KB, while chat's
// own goroutine needs 8 KB: a quarter less memory per webhook waiting
// for the model (see README, "Performance").
func (ep *endpoint) chatApart(ctx context.Context, model string) (Response, error) {
	return apart(func() (Response, error) { return ep.chat(ctx, model) })
}

// apart runs f on a goroutine of its own and waits for it. A panic there
// (a client library meeting a body it did not expect) becomes the call's
// error, as net/http would have contained it on the caller's goroutine.
func apart(f func() (Response, error)) (Response, error) {
	type result struct {
		r   Response
		err error
	}
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- result{err: fmt.Errorf("the model client panicked: %v", p)}
			}
		}()
		r, err := f()
		ch <- result{r, err}
	}()
	res := <-ch
	return res.r, res.err
}

// chat is one chat completion through go-openai, with the prepared body
// in ctx.
//
//go:noinline
func (ep *endpoint) chat(ctx context.Context, model string) (Response, error) {
	// Only the model: go-openai needs it for the URL (Azure's deployment)
	// and its checks; the body is the prepared one.
	resp, err := ep.client.CreateChatCompletion(ctx, openai.ChatCompletionRequest{Model: model})
	if err != nil {
		return Response{}, err
	}
	if len(resp.Choices) == 0 {
		return Response{}, errors.New("no choices in the response")
	}
	return fromOpenAI(resp), nil
}

// noRoom is the outcome of a call the deadline left no room for.
//
//go:noinline
func (c *Client) noRoom(ctx context.Context, ep *endpoint, last *Error, done func(error)) *Error {
	if last == nil {
		done(errNotCounted)
		return &Error{Kind: ErrNoTime, Endpoint: ep.name, Err: errSpent}
	}
	done(c.verdict(ctx, last, 0))
	return last
}

// attempt tells the observer of a try.
//
//go:noinline
func (c *Client) attempt(ep *endpoint, model string, try int, fallback bool, took time.Duration, last *Error, err error) {
	if c.observer == nil {
		return
	}
	a := Attempt{Endpoint: ep.name, Model: model, Retry: try > 0, Fallback: fallback, Duration: took}
	if err != nil {
		a.Err = last
	}
	c.observer.Attempt(a)
}

// again waits before another try when tryAgain allows one; false means
// the call is over (and done was told its outcome).
//
//go:noinline
func (c *Client) again(ctx context.Context, ep *endpoint, last *Error, try int, took time.Duration, done func(error)) bool {
	wait, again := c.tryAgain(ctx, last, try)
	if !again {
		done(c.verdict(ctx, last, took))
		return false
	}
	c.log.Debug("retrying", zap.String("endpoint", ep.name), zap.Int("status", last.Status), zap.Duration("wait", wait))
	t := time.NewTimer(wait)
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		t.Stop()
		done(c.verdict(ctx, last, took))
		return false
	}
}

// tryAgain decides whether a failed try is repeated on the same endpoint,
// and after how long. Only failures that may pass are retried (5xx, 429,
// network errors, unreadable bodies), at most MaxRetries times, after the
// endpoint's Retry-After or else a jittered backoff, and only when that
// wait still leaves the deadline room for a call. Otherwise the caller
// moves on to the next endpoint, if any.
func (c *Client) tryAgain(ctx context.Context, e *Error, try int) (time.Duration, bool) {
	if !e.retryable() || try >= c.maxRetries {
		return 0, false
	}
	wait := backoff(try)
	if e.RetryAfter > 0 {
		wait = e.RetryAfter
	}
	if !c.roomFor(ctx, wait) {
		c.log.Debug("no room to retry", zap.String("endpoint", e.Endpoint), zap.Duration("wait", wait))
		return 0, false
	}
	return wait, true
}

// hangAfter is how long a call must have been given before a deadline
// cutting it counts against the endpoint: a call started with little of
// the budget left says nothing of the endpoint's health.
const hangAfter = 5 * time.Second

// verdict is what a failed call tells the breaker: the failure itself
// when the endpoint is to blame, errNotCounted when it is not (a refused
// request, a caller that went away, a deadline that left the call little
// time).
func (c *Client) verdict(ctx context.Context, e *Error, took time.Duration) error {
	switch {
	case e.refused():
		return errNotCounted
	case e.Kind == ErrTimeout && (errors.Is(ctx.Err(), context.Canceled) || took < hangAfter):
		return errNotCounted
	}
	return e
}

// minCall is the least time worth starting a call with.
const minCall = 50 * time.Millisecond

// roomFor reports whether waiting d still leaves time for a call.
func (c *Client) roomFor(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	dl, ok := ctx.Deadline()
	return !ok || dl.Sub(c.now()) > d+minCall
}

// backoff is exponential with full jitter: 0..200ms, 0..400ms, ... up to 4s.
func backoff(try int) time.Duration {
	ceiling := 200 * time.Millisecond << min(try, 5)
	ceiling = min(ceiling, 4*time.Second)
	return time.Duration(rand.Int64N(int64(ceiling)) + 1)
}

// Open reports whether the endpoint at index i is being skipped.
func (c *Client) Open(i int) bool { return c.endpoints[i].breaker.open() }

// Endpoints names the endpoints in order.
func (c *Client) Endpoints() []string {
	names := make([]string, len(c.endpoints))
	for i, e := range c.endpoints {
		names[i] = e.name
	}
	return names
}
