// Package metrics is kommbridge's Prometheus instrumentation: what
// webhooks, the model, handoffs, limits, dedupe, attachments and config
// reloads did. It is served at GET /metrics; README.md lists every metric.
package metrics

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/llm"
)

// Metrics holds the collectors. Its methods are safe for concurrent use.
type Metrics struct {
	reg          *prometheus.Registry
	webhooks     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	modelLatency *prometheus.HistogramVec
	modelErrors  *prometheus.CounterVec
	retries      *prometheus.CounterVec
	fallbacks    *prometheus.CounterVec
	tokens       *prometheus.CounterVec
	handoffs     *prometheus.CounterVec
	limited      prometheus.Counter
	deduplicated prometheus.Counter
	attachments  *prometheus.CounterVec
	violations   *prometheus.CounterVec
	reloads      *prometheus.CounterVec
}

// New registers every metric on a new registry, with Go and process metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	f := func(c prometheus.Collector) { reg.MustRegister(c) }
	m := &Metrics{reg: reg}
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kommbridge_webhooks_total", Help: "Webhooks by event and HTTP status."}, []string{"event", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kommbridge_webhook_duration_seconds", Help: "Webhook arrival to answer, by outcome.",
		Buckets: []float64{.005, .01, .05, .1, .25, .5, 1, 2, 4, 8, 15, 25, 30}}, []string{"outcome"})
	m.modelLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "kommbridge_model_request_duration_seconds", Help: "One call to a model endpoint.",
		Buckets: []float64{.1, .25, .5, 1, 2, 4, 8, 15, 25}}, []string{"endpoint", "model"})
	m.modelErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kommbridge_model_errors_total", Help: "Failed model calls by endpoint and kind."}, []string{"endpoint", "kind"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kommbridge_model_retries_total", Help: "Retried model calls by endpoint."}, []string{"endpoint"})
	m.fallbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kommbridge_model_fallbacks_total", Help: "Calls to a fallback endpoint."}, []string{"endpoint"})
	m.tokens = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kommbridge_tokens_total", Help: "Tokens by bot and direction (in, out)."}, []string{"bot", "direction"})
	m.handoffs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kommbridge_handoffs_total", Help: "Handoffs to people by reason."}, []string{"reason"})
	m.limited = prometheus.NewCounter(prometheus.CounterOpts{Name: "kommbridge_rate_limited_total", Help: "Events answered with limits.message."})
	m.deduplicated = prometheus.NewCounter(prometheus.CounterOpts{Name: "kommbridge_deduplicated_total", Help: "Repeated message keys answered from the dedupe record."})
	m.attachments = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kommbridge_attachments_total", Help: "Attachments by outcome (ok, unsupported, failed)."}, []string{"outcome"})
	m.violations = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kommbridge_reply_contract_violations_total", Help: "Model replies that broke their format's contract."}, []string{"format", "violation"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kommbridge_config_reloads_total", Help: "Configuration reloads by result (ok, rejected)."}, []string{"result"})
	for _, c := range []prometheus.Collector{m.webhooks, m.latency, m.modelLatency, m.modelErrors, m.retries, m.fallbacks, m.tokens,
		m.handoffs, m.limited, m.deduplicated, m.attachments, m.violations, m.reloads} {
		f(c)
	}
	return m
}

// Handler serves the metrics in Prometheus' text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Breakers exports each endpoint's breaker as kommbridge_breaker_open
// (1 while the endpoint is skipped).
func (m *Metrics) Breakers(c *llm.Client) {
	for i, name := range c.Endpoints() {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kommbridge_breaker_open", Help: "1 while the endpoint is skipped after repeated failures.",
			ConstLabels: prometheus.Labels{"endpoint": name, "position": strconv.Itoa(i)},
		}, func() float64 {
			if c.Open(i) {
				return 1
			}
			return 0
		}))
	}
}

// Attempt records one model call; it makes Metrics an llm.Observer.
func (m *Metrics) Attempt(a llm.Attempt) {
	m.modelLatency.WithLabelValues(a.Endpoint, a.Model).Observe(a.Duration.Seconds())
	if a.Retry {
		m.retries.WithLabelValues(a.Endpoint).Inc()
	}
	if a.Fallback && !a.Retry {
		m.fallbacks.WithLabelValues(a.Endpoint).Inc()
	}
	if a.Err != nil {
		kind := "other"
		for _, k := range []error{llm.ErrTimeout, llm.ErrUnavailable, llm.ErrRejected, llm.ErrMalformed} {
			if errors.Is(a.Err, k) {
				kind = k.Error()
				break
			}
		}
		m.modelErrors.WithLabelValues(a.Endpoint, kind).Inc()
	}
}

// Webhook records an answered webhook; it makes Metrics an adapter.Observer.
func (m *Metrics) Webhook(bot, event string, status int, d time.Duration, r *bridge.Result) {
	m.webhooks.WithLabelValues(event, strconv.Itoa(status)).Inc()
	if r == nil {
		return
	}
	m.latency.WithLabelValues(r.Outcome).Observe(d.Seconds())
	if r.Usage.PromptTokens > 0 || r.Usage.CompletionTokens > 0 {
		m.tokens.WithLabelValues(bot, "in").Add(float64(r.Usage.PromptTokens))
		m.tokens.WithLabelValues(bot, "out").Add(float64(r.Usage.CompletionTokens))
	}
	if r.HandoffReason != "" && r.Outcome != kommbridge.OutcomeDuplicate {
		m.handoffs.WithLabelValues(r.HandoffReason).Inc()
	}
	switch r.Outcome {
	case kommbridge.OutcomeLimited:
		m.limited.Inc()
	case kommbridge.OutcomeDuplicate:
		m.deduplicated.Inc()
	}
	for _, o := range r.Attachments {
		m.attachments.WithLabelValues(o).Inc()
	}
	if r.Violation != "" {
		m.violations.WithLabelValues(r.Format, r.Violation).Inc()
	}
}

// Reload records a configuration reload.
func (m *Metrics) Reload(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
	} else {
		m.reloads.WithLabelValues("rejected").Inc()
	}
}
