package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// The kinds of failure callers branch on; match them with errors.Is.
var (
	// ErrTimeout: the deadline passed before any endpoint answered.
	ErrTimeout = errors.New("deadline reached")
	// ErrUnavailable: endpoints failed in ways worth retrying (429, 5xx,
	// network) and no retry or fallback succeeded in time.
	ErrUnavailable = errors.New("model unavailable")
	// ErrRejected: the endpoint refused the request (400, 401, 403, 404,
	// a redirect elsewhere); retrying cannot help.
	ErrRejected = errors.New("request rejected")
	// ErrMalformed: the endpoint answered with a body that is not a chat
	// completion, or one over llm.max_response_bytes.
	ErrMalformed = errors.New("malformed response")

	// ErrFiltered: the provider's content filter refused the prompt
	// (Azure OpenAI answers 400 with code content_filter). Not retried,
	// not held against the endpoint.
	ErrFiltered = errors.New("content filtered")
	// ErrContextOverflow: the prompt is longer than the model's context
	// (400 context_length_exceeded, or the words other servers use). The
	// bridge retries once with less history.
	ErrContextOverflow = errors.New("context too long")

	// The model was not called; these say nothing of its health.

	// ErrBusy: every model call slot stayed taken until the deadline, or
	// what was left of it was less than the endpoint usually takes.
	ErrBusy = errors.New("busy")
	// ErrNoTime: the deadline had passed before a call could start.
	ErrNoTime = errors.New("no time left")
)

// Kinds lists every error kind, for metrics' labels and docs/operations.md.
var Kinds = []error{ErrTimeout, ErrUnavailable, ErrRejected, ErrMalformed, ErrFiltered, ErrContextOverflow, ErrBusy, ErrNoTime}

// Error is a failed call to one endpoint.
type Error struct {
	Kind     error // one of the Err* values above
	Status   int   // HTTP status, 0 when none
	Endpoint string
	// Model is the model the call asked for.
	Model string
	Err   error
	// Attempts counts the calls made before giving up, retries and
	// fallbacks included (set on the error Complete returns).
	Attempts int
	// RetryAfter is when the endpoint asked to be called again (429, 503);
	// 0 when it did not say.
	RetryAfter time.Duration
	// GatewayRetried: a gateway in front of the model said it had retried
	// the request already.
	GatewayRetried bool
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("llm: %s: %s (HTTP %d): %v", e.Endpoint, e.Kind, e.Status, e.Detail())
	}
	return fmt.Sprintf("llm: %s: %s: %v", e.Endpoint, e.Kind, e.Err)
}

// Detail is the failure in the server's own words (or the underlying
// error's), without the status.
func (e *Error) Detail() string {
	var he *httpError
	if errors.As(e.Err, &he) {
		if he.code != "" {
			return "code " + he.code + ": " + he.msg
		}
		return he.msg
	}
	return fmt.Sprint(e.Err)
}

// Unwrap lets errors.Is match both the kind and the cause.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

func (e *Error) retryable() bool { return e.Kind == ErrUnavailable || e.Kind == ErrMalformed }

// refused: the endpoint refused this request (a 4xx, a content filter, a
// context overflow): no retry helps, another endpoint would most likely
// refuse it too, and the endpoint's health is not in question.
func (e *Error) refused() bool {
	return e.Kind == ErrRejected || e.Kind == ErrFiltered || e.Kind == ErrContextOverflow
}

// classify maps a failed call to an Error.
func classify(ctx context.Context, endpoint, model string, err error) *Error {
	e := &Error{Endpoint: endpoint, Model: model, Err: err}
	var he *httpError
	var be *bodyError
	var mf *malformed
	switch {
	case ctx.Err() != nil:
		e.Kind = ErrTimeout
	case errors.As(err, &he):
		e.Status, e.RetryAfter, e.GatewayRetried = he.status, he.retryAfter, he.gatewayRetried
		e.Kind = special(kindOfStatus(he.status), he.code, he.msg)
	case errors.As(err, &be):
		e.Kind = ErrUnavailable // an upstream's failure passed on
		if st := be.obj.status(); st >= 400 && st < 500 && st != http.StatusTooManyRequests && st != http.StatusRequestTimeout {
			e.Kind = ErrRejected
		}
		e.Kind = special(e.Kind, be.obj.code(), be.obj.Message)
	case errors.Is(err, errRedirect):
		e.Kind = ErrRejected
	case errors.As(err, &mf), errors.Is(err, errTooLarge):
		e.Kind = ErrMalformed
	case isNetwork(err):
		e.Kind = ErrUnavailable
	default:
		e.Kind = ErrMalformed
	}
	return e
}

// overflowWords are how servers say a prompt is over the context: OpenAI
// and Azure (context_length_exceeded), vLLM ("maximum context length"),
// Anthropic's and Gemini's compatible endpoints ("prompt is too long",
// "exceeds the maximum number of tokens"), llama.cpp and Ollama ("exceeds
// the available context size", "context window").
var overflowWords = []string{"context_length_exceeded", "maximum context length", "context length", "context window",
	"prompt is too long", "exceeds the maximum number of tokens", "exceeds the available context size", "too many tokens"}

// special refines a rejected request's kind from the provider's error code
// and message: a content filter, or a context overflow.
func special(kind error, code, msg string) error {
	if kind != ErrRejected && kind != ErrMalformed {
		return kind
	}
	text := strings.ToLower(code + " " + msg)
	switch {
	case strings.Contains(text, "content_filter") || strings.Contains(text, "content management policy"):
		return ErrFiltered
	}
	for _, w := range overflowWords {
		if strings.Contains(text, w) {
			return ErrContextOverflow
		}
	}
	return kind
}

func kindOfStatus(status int) error {
	switch {
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout, status >= 500:
		return ErrUnavailable
	case status >= 400:
		return ErrRejected
	default:
		return ErrMalformed
	}
}

func isNetwork(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
