package llm

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

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
	// Headers are sent with every request to this endpoint alone (a
	// gateway's own keys, OpenRouter's HTTP-Referer ...).
	Headers map[string]string
	// GatewayRetries: the endpoint is a gateway that retries by itself,
	// so the client does not retry on it.
	GatewayRetries bool
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
	// MaxResponseBytes bounds an answer read from an endpoint; 0 means
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// HTTPClient makes the calls; nil means a client with sensible
	// pooling. Its redirect policy is replaced: a redirect is followed only
	// within the endpoint's own origin.
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
	endpoints []*endpoint
	sem       chan struct{}
	observer  Observer
	log       *zap.Logger
	now       func() time.Time
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
			// net/http's 8: a request whose headers and body fit the write
			// buffer goes out in one write (see docs/performance.md).
			ReadBufferSize:  1 << 10,
			WriteBufferSize: 4 << 10,
		}}
	}
	own := *hc
	own.CheckRedirect = SameOrigin
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	maxBody := cmp.Or(cfg.MaxResponseBytes, DefaultMaxResponseBytes)
	c := &Client{observer: cfg.Observer, log: log, now: cfg.Now}
	if cfg.MaxConcurrency > 0 {
		c.sem = make(chan struct{}, cfg.MaxConcurrency)
	}
	for _, e := range cfg.Endpoints {
		headers := http.Header{}
		for k, v := range e.Headers {
			headers.Set(k, v)
		}
		ep := &endpoint{
			name:    EndpointName(e.BaseURL),
			base:    strings.TrimRight(e.BaseURL, "/"),
			model:   e.Model,
			key:     e.APIKey,
			azure:   e.APIType == "azure",
			version: e.APIVersion,
			headers: headers,
			retries: cfg.MaxRetries,
			tokens:  tokenField{force: e.MaxCompletionTokens},
			hc:      &own,
			maxBody: maxBody,
			breaker: newBreaker(cfg.BreakerFailures, cfg.BreakerCooldown),
		}
		if e.GatewayRetries {
			ep.retries = 0
		}
		c.endpoints = append(c.endpoints, ep)
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
// retries tryAgain allows. The breaker hears its outcome once, here,
// whatever the number of tries. The primary uses req.Model when set.
func (c *Client) call(ctx context.Context, i int, req *Request, done func(error)) (Response, int, *Error) {
	ep := c.endpoints[i]
	model := ep.model
	if i == 0 && req.Model != "" {
		model = req.Model
	}
	resp, tries, took, e := c.tries(ctx, ep, i > 0, req, model)
	switch {
	case e == nil:
		done(nil)
		resp.Endpoint, resp.Model = ep.name, model
	case tries == 0:
		done(errNotCounted)
	default:
		done(c.verdict(ctx, ep, e, took))
	}
	return resp, tries, e
}

// tries calls ep until it answers, or tryAgain says no; took is the last
// try's duration.
func (c *Client) tries(ctx context.Context, ep *endpoint, fallback bool, req *Request, model string) (Response, int, time.Duration, *Error) {
	completion := ep.tokens.completion(model)
	relearned := false
	var last *Error
	var took time.Duration
	for try := 0; ; {
		if usual := ep.usual.median(); !c.roomFor(ctx, usual) {
			if last == nil {
				// Not called: too late for the time it usually takes.
				err := errSpent
				if usual > 0 && c.roomFor(ctx, 0) {
					err = fmt.Errorf("%v left, less than the %v this endpoint usually takes", c.left(ctx).Round(time.Millisecond), usual.Round(time.Millisecond))
				}
				last = &Error{Kind: ErrNoTime, Endpoint: ep.name, Model: model, Err: err}
			}
			return Response{}, try, took, last
		}
		body, err := req.body(model, completion)
		if err != nil {
			// A schema or tool that does not encode: a request no
			// endpoint would take.
			return Response{}, try, 0, &Error{Kind: ErrRejected, Endpoint: ep.name, Model: model, Err: fmt.Errorf("encoding the request: %w", err)}
		}
		start := c.now()
		resp, err := ep.chat(ctx, model, body)
		took = c.now().Sub(start)
		try++
		last = nil
		if err != nil {
			last = classify(ctx, ep.name, model, err)
		}
		c.attempt(ep, model, try > 1, fallback, took, last)
		if last == nil {
			ep.usual.add(took)
			return resp, try, took, nil
		}
		if !relearned && ep.tokens.learn(last, completion) {
			// The endpoint named the token limit field it wants: send that
			// one now, and from now on.
			relearned, completion = true, !completion
			try--
			continue
		}
		wait, again := c.tryAgain(ctx, ep, last, try-1)
		if !again {
			return Response{}, try, took, last
		}
		c.log.Debug("retrying", zap.String("endpoint", ep.name), zap.Int("status", last.Status), zap.Duration("wait", wait))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return Response{}, try, took, last
		}
	}
}

// attempt tells the observer of a try.
func (c *Client) attempt(ep *endpoint, model string, retry, fallback bool, took time.Duration, failed *Error) {
	if c.observer == nil {
		return
	}
	a := Attempt{Endpoint: ep.name, Model: model, Retry: retry, Fallback: fallback, Duration: took}
	if failed != nil {
		a.Err = failed
	}
	c.observer.Attempt(a)
}

// tryAgain decides whether a failed try is repeated on the same endpoint,
// and after how long. Only failures that may pass are retried (5xx, 429,
// network errors, unreadable bodies), at most the endpoint's retries
// (none behind a gateway that retries, or that says it did), after the
// endpoint's Retry-After or else a jittered backoff, and only when that
// wait still leaves the deadline room for a call. Otherwise the caller
// moves on to the next endpoint, if any.
func (c *Client) tryAgain(ctx context.Context, ep *endpoint, e *Error, try int) (time.Duration, bool) {
	if !e.retryable() || try >= ep.retries || e.GatewayRetried {
		return 0, false
	}
	wait := backoff(try)
	if e.RetryAfter > 0 {
		wait = e.RetryAfter
	}
	if !c.roomFor(ctx, wait+ep.usual.median()) {
		c.log.Debug("no room to retry", zap.String("endpoint", e.Endpoint), zap.Duration("wait", wait))
		return 0, false
	}
	return wait, true
}

// hangAfter is how long a call must have been given before a deadline
// cutting it counts against the endpoint (and twice the time the endpoint
// usually takes, when that is longer): a call started with little of the
// budget left says nothing of the endpoint's health.
const hangAfter = 5 * time.Second

// verdict is what a failed call tells the breaker: the failure itself
// when the endpoint is to blame, errNotCounted when it is not (a refused
// request, a caller that went away, a deadline that left the call little
// time).
func (c *Client) verdict(ctx context.Context, ep *endpoint, e *Error, took time.Duration) error {
	switch {
	case e.refused():
		return errNotCounted
	case e.Kind == ErrTimeout && (errors.Is(ctx.Err(), context.Canceled) || took < max(hangAfter, 2*ep.usual.median())):
		return errNotCounted
	}
	return e
}

// left is the time ctx's deadline leaves.
func (c *Client) left(ctx context.Context) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return time.Duration(1<<63 - 1)
	}
	return dl.Sub(c.now())
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
