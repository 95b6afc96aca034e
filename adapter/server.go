package adapter

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/bridge"
)

// Handler answers events; *bridge.Bridge implements it.
type Handler interface {
	Handle(ctx context.Context, ev kommbridge.Event) (bridge.Result, error)
}

// Observer hears of every webhook: r is nil for a refused one.
type Observer interface {
	Webhook(bot, event string, status int, d time.Duration, r *bridge.Result)
	// CallerGone is called when a caller closes its connection while its
	// answer is being made.
	CallerGone()
}

// Options configure the HTTP side.
type Options struct {
	WebhookPath string
	// AuthHeader and AuthValue are the header Kommunicate sends; an empty
	// AuthValue turns authentication off.
	AuthHeader   string
	AuthValue    string
	MaxBodyBytes int64
	// LogContent logs message text and keys.
	LogContent bool
	// Masks are taken out of the message text logged with LogContent, as
	// the bridge takes them out of what the model reads.
	Masks kommbridge.Masks
	// Ready reports whether the service can take traffic (store reachable);
	// nil means always ready.
	Ready func(ctx context.Context) error
	// Degradable says webhooks are still answered when Ready fails (the
	// store outage policy "degrade"): /readyz then answers 200 "degraded",
	// so an orchestrator does not take every replica out at once.
	Degradable bool
	// Metrics, when set, is served at GET /metrics.
	Metrics http.Handler
	// Observer, when set, hears of every webhook answered or refused.
	Observer Observer
	// Now defaults to time.Now.
	Now func() time.Time
}

// Server is kommbridge's HTTP API. It is an http.Handler.
type Server struct {
	echo    *echo.Echo
	handler Handler
	opts    Options
	token   [sha256.Size]byte
	log     *zap.Logger
	ids     atomic.Uint64
	idBase  string
}

// NewServer builds the HTTP API around h.
func NewServer(h Handler, o Options, log *zap.Logger) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{handler: h, opts: o, log: log, idBase: strconv.FormatInt(time.Now().UnixNano()%1e9, 36) + "-"}
	s.token = sha256.Sum256([]byte(o.AuthValue))
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.httpError
	s.echo = e
	s.routes()
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// apiError is an error with the status and text a client is shown.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func fail(status int, format string, args ...any) error {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// httpError is the one place errors become HTTP answers: always a status
// and {"error": "<what was wrong>"}.
func (s *Server) httpError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg := http.StatusInternalServerError, "internal error"
	var ae *apiError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		status, msg = ae.status, ae.msg
	case errors.As(err, &he):
		status = he.Code
		switch status {
		case http.StatusNotFound:
			msg = fmt.Sprintf("no such path %s; Kommunicate's webhook is POST %s", c.Request().URL.Path, s.opts.WebhookPath)
		case http.StatusMethodNotAllowed:
			msg = fmt.Sprintf("method %s not allowed on %s", c.Request().Method, c.Request().URL.Path)
		default:
			msg = http.StatusText(status)
		}
	}
	if status >= 500 {
		s.log.Error("request failed", zap.String("path", c.Request().URL.Path), zap.Error(err))
	} else {
		s.log.Info("request refused", zap.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
			zap.String("method", c.Request().Method), zap.String("path", c.Request().URL.Path),
			zap.Int("status", status), zap.String("reason", msg))
	}
	if s.opts.Observer != nil && c.Path() == s.opts.WebhookPath && c.Request().Method == http.MethodPost {
		s.opts.Observer.Webhook("", "invalid", status, 0, nil)
	}
	if err := c.JSON(status, map[string]string{"error": msg}); err != nil {
		s.log.Debug("error body not written", zap.Error(err))
	}
}

// authorized compares the auth header in constant time (hashes, so the
// length does not leak either).
func (s *Server) authorized(r *http.Request) error {
	if s.opts.AuthValue == "" {
		return nil
	}
	got := r.Header.Get(s.opts.AuthHeader)
	if got == "" {
		return fail(http.StatusUnauthorized, "missing %s header", s.opts.AuthHeader)
	}
	sum := sha256.Sum256([]byte(got))
	if subtle.ConstantTimeCompare(sum[:], s.token[:]) != 1 {
		return fail(http.StatusUnauthorized, "wrong %s header value", s.opts.AuthHeader)
	}
	return nil
}

// readBody reads at most MaxBodyBytes, refusing more with 413.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	limit := s.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, fail(http.StatusRequestEntityTooLarge, "body of %d bytes is over the %d-byte limit (server.max_body_bytes)", r.ContentLength, limit)
	}
	// One buffer of the declared length (io.ReadAll would grow one from
	// 512 bytes), with room to see the end.
	buf := bytes.NewBuffer(make([]byte, 0, min(max(r.ContentLength, 0), limit)+bytes.MinRead))
	if _, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1)); err != nil {
		return nil, fail(http.StatusBadRequest, "reading the body: %v", err)
	}
	body := buf.Bytes()
	if int64(len(body)) > limit {
		return nil, fail(http.StatusRequestEntityTooLarge, "body is over the %d-byte limit (server.max_body_bytes)", limit)
	}
	return body, nil
}

func (s *Server) requestID(c echo.Context) string {
	id := c.Request().Header.Get(echo.HeaderXRequestID)
	if id == "" || len(id) > 128 {
		id = s.idBase + strconv.FormatUint(s.ids.Add(1), 36)
	}
	c.Response().Header().Set(echo.HeaderXRequestID, id)
	return id
}
