package adapter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/bridge"
)

// routes is the whole HTTP surface.
func (s *Server) routes() {
	s.echo.POST(s.opts.WebhookPath, s.webhook())
	s.echo.GET("/healthz", s.healthz())
	s.echo.GET("/readyz", s.readyz())
	if s.opts.Metrics != nil {
		s.echo.GET("/metrics", echo.WrapHandler(s.opts.Metrics))
	}
}

// webhook answers Kommunicate. While the model works, this goroutine
// waits at the bottom of the bridge's and the model client's calls; its
// stack stays within 16 KB (cmd/kommbridge TestStackPerWaitingWebhook
// pins what a waiting webhook holds).
func (s *Server) webhook() echo.HandlerFunc {
	return func(c echo.Context) error {
		ev, id, err := s.event(c)
		if err != nil {
			return err
		}
		r := c.Request()
		if s.opts.Observer != nil {
			stop := context.AfterFunc(r.Context(), s.opts.Observer.CallerGone)
			defer stop()
		}
		res, err := s.handler.Handle(r.Context(), ev)
		return s.answer(c, id, &ev, &res, err)
	}
}

// event authenticates and decodes a webhook.
func (s *Server) event(c echo.Context) (kommbridge.Event, string, error) {
	received := s.opts.Now()
	id := s.requestID(c)
	r := c.Request()
	if err := s.authorized(r); err != nil {
		return kommbridge.Event{}, id, err
	}
	body, err := s.readBody(r)
	if err != nil {
		return kommbridge.Event{}, id, err
	}
	ev, err := DecodeEvent(body, received)
	if err != nil {
		return kommbridge.Event{}, id, fail(http.StatusBadRequest, "%s", err.Error())
	}
	return ev, id, nil
}

// answer writes the bridge's answer, and logs and counts it.
func (s *Server) answer(c echo.Context, id string, ev *kommbridge.Event, res *bridge.Result, err error) error {
	if errors.Is(err, bridge.ErrUnknownBot) {
		return fail(http.StatusNotFound, "no bot configured for botId %q and no default bot (id \"*\") in bots[]", ev.BotID)
	}
	if err != nil {
		return err
	}
	r := c.Request()
	out := Marshal(res.Reply)
	latency := s.opts.Now().Sub(ev.ReceivedAt)
	// A caller that went away is told nothing; its answer waits in the
	// dedupe record for Kommunicate's retry of the key.
	gone := r.Context().Err() != nil
	seen := *res
	if gone {
		seen.Outcome = kommbridge.OutcomeCallerGone
	}
	if s.opts.Observer != nil {
		s.opts.Observer.Webhook(ev.BotID, eventLabel(ev.Name), http.StatusOK, latency, &seen)
	}
	if ce := s.log.Check(zap.InfoLevel, "webhook"); ce != nil {
		logged := *ev
		logged.Text = s.opts.Masks.Mask(ev.Text)
		fields := webhookFields(id, logged, &seen, latency, out, s.opts.LogContent)
		if gone {
			fields = append(fields, zap.String("answer_outcome", res.Outcome))
		}
		ce.Write(fields...)
	}
	if gone {
		return nil
	}
	return c.JSONBlob(http.StatusOK, out)
}

// kbFields are what the help center did: kb found, not_found or failed,
// how it searched, the best match, the passages given (ids, never text),
// those cited and the numbers dropped.
func kbFields(k *bridge.KBResult) []zap.Field {
	fs := []zap.Field{zap.String("kb", k.Result()), zap.String("kb_base", k.Base)}
	if k.Err == nil {
		fs = append(fs, zap.String("kb_mode", string(k.Mode)), zap.Float64("kb_best", math.Round(k.Best*1000)/1000))
	}
	if len(k.Passages) > 0 {
		fs = append(fs, zap.Strings("kb_passages", k.Passages))
	}
	if len(k.Cited) > 0 {
		ids := make([]string, len(k.Cited))
		for i, c := range k.Cited {
			ids[i] = c.ID
		}
		fs = append(fs, zap.Strings("kb_cited", ids))
	}
	if k.Dropped > 0 {
		fs = append(fs, zap.Int("kb_dropped_sources", k.Dropped))
	}
	return fs
}

// webhookFields are the log fields of one answered webhook.
func webhookFields(id string, ev kommbridge.Event, res *bridge.Result, latency time.Duration, out []byte, content bool) []zap.Field {
	fields := []zap.Field{
		zap.String("request_id", id), zap.String("bot", ev.BotID), zap.String("conversation", ev.ConversationID),
		zap.String("event", eventLabel(ev.Name)), zap.Int("status", http.StatusOK), zap.String("outcome", res.Outcome),
		zap.Duration("latency", latency),
	}
	if res.HandoffReason != "" {
		fields = append(fields, zap.String("handoff_reason", res.HandoffReason))
	}
	if res.FinishReason != "" && res.FinishReason != "stop" && res.FinishReason != "tool_calls" {
		fields = append(fields, zap.String("finish_reason", res.FinishReason))
	}
	if res.ModelReason != "" {
		fields = append(fields, zap.String("model_reason", res.ModelReason))
	}
	if res.Attempts > 0 || res.Endpoint != "" {
		fields = append(fields, zap.String("endpoint", res.Endpoint), zap.String("model", res.Model),
			zap.Int("attempts", res.Attempts), zap.Duration("model_latency", res.ModelLatency),
			zap.Int("tokens_in", res.Usage.PromptTokens), zap.Int("tokens_out", res.Usage.CompletionTokens))
	}
	if res.Degraded {
		fields = append(fields, zap.Bool("degraded", true))
	}
	if ev.Clicked != "" {
		fields = append(fields, zap.String("clicked", ev.Clicked))
	}
	if len(ev.Form) > 0 {
		fields = append(fields, zap.Int("form_fields", len(ev.Form)))
	}
	if res.Offline {
		fields = append(fields, zap.Bool("offline", true))
	}
	if res.Channel != "" && res.Channel != kommbridge.ChannelWeb {
		fields = append(fields, zap.String("channel", res.Channel))
	}
	if res.Violation != "" {
		fields = append(fields, zap.String("contract_violation", res.Violation))
	}
	if k := res.Knowledge; k != nil {
		fields = append(fields, kbFields(k)...)
	}
	if res.Promise != "" {
		fields = append(fields, zap.String("false_promise", res.Promise))
	}
	if len(res.Actions) > 0 {
		calls := make([]string, len(res.Actions))
		for i, a := range res.Actions {
			calls[i] = fmt.Sprintf("%s %s", a.Action, a.Kind)
			if a.Status != 0 {
				calls[i] += fmt.Sprintf(" %d", a.Status)
			}
			if a.Took > 0 {
				calls[i] += " " + a.Took.Round(time.Millisecond).String()
			}
		}
		fields = append(fields, zap.Strings("actions", calls))
	}
	if res.Err != nil {
		msg := res.Err.Error()
		if !content {
			msg = kommbridge.Redact(msg, ev.Text)
		}
		fields = append(fields, zap.String("model_error", msg))
	}
	if content {
		fields = append(fields, zap.String("key", ev.Key), zap.String("text", ev.Text), zap.ByteString("answer", out))
	}
	return fields
}

func eventLabel(name string) string {
	if name == "" {
		return "message"
	}
	return name
}

func (s *Server) healthz() echo.HandlerFunc {
	return func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
	}
}

func (s *Server) readyz() echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.opts.Ready != nil {
			ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
			defer cancel()
			if err := s.opts.Ready(ctx); err != nil {
				if s.opts.Degradable {
					return c.JSON(http.StatusOK, map[string]string{"status": "degraded", "reason": err.Error()})
				}
				return fail(http.StatusServiceUnavailable, "not ready: %v", err)
			}
		}
		return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
	}
}
