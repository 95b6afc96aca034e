// Package metrics is kommbridge's Prometheus instrumentation: what
// webhooks, the model, handoffs, limits, dedupe, attachments and config
// reloads did. It is served at GET /metrics; docs/operations.md lists every metric.
package metrics

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/action"
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
	deliveries   *prometheus.CounterVec
	cut          *prometheus.CounterVec
	storeDown    prometheus.Gauge
	outages      prometheus.Counter
	callersGone  prometheus.Counter
	leasesLost   *prometheus.CounterVec
	finishes     *prometheus.CounterVec
	kbSearches   *prometheus.CounterVec
	kbFallbacks  *prometheus.CounterVec
	kbDropped    *prometheus.CounterVec
	promises     *prometheus.CounterVec
	notes        *prometheus.CounterVec
	convs        *prometheus.CounterVec
	actionCalls  *prometheus.CounterVec
	actionTime   *prometheus.HistogramVec
	buildInfo    *prometheus.GaugeVec

	// labels are the bot ids and event names the configuration knows;
	// anything else a caller sends is counted as "other", so that no
	// caller can create series.
	labels atomic.Pointer[labelSet]
}

type labelSet struct{ bots, events, actions map[string]bool }

// Other is the label value of every bot id and event name the
// configuration does not name.
const Other = "other"

// Outcomes, handoff reasons and attachment outcomes: their series exist
// from the start, at zero, so that alerts on them can be written.
var (
	attachmentOutcomes = []string{"ok", "unsupported", "failed", "skipped"}
	finishReasons      = []string{"stop", "length", "tool_calls", "content_filter", Other}
	errorKinds         = []error{llm.ErrTimeout, llm.ErrUnavailable, llm.ErrRejected, llm.ErrMalformed, llm.ErrFiltered, llm.ErrContextOverflow}
)

// Metric describes one exported metric, for docs and tests.
type Metric struct {
	Name   string
	Help   string
	Labels []string
}

// New registers every metric on a new registry, with Go and process metrics.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{reg: reg}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
		reg.MustRegister(h)
		return h
	}
	counterOf := func(name string) *prometheus.CounterVec {
		c := named(name)
		return counter(c.Name, c.Help, c.Labels...)
	}
	histogramOf := func(name string, buckets []float64) *prometheus.HistogramVec {
		c := named(name)
		return histogram(c.Name, c.Help, buckets, c.Labels...)
	}
	m.webhooks = counterOf("kommbridge_webhooks_total")
	m.latency = histogramOf("kommbridge_webhook_duration_seconds", []float64{.005, .01, .05, .1, .25, .5, 1, 2, 4, 8, 15, 25, 30})
	m.modelLatency = histogramOf("kommbridge_model_request_duration_seconds", []float64{.1, .25, .5, 1, 2, 4, 8, 15, 25})
	m.modelErrors = counterOf("kommbridge_model_errors_total")
	m.retries = counterOf("kommbridge_model_retries_total")
	m.fallbacks = counterOf("kommbridge_model_fallbacks_total")
	m.tokens = counterOf("kommbridge_tokens_total")
	m.handoffs = counterOf("kommbridge_handoffs_total")
	m.limited = counterOf("kommbridge_rate_limited_total").WithLabelValues()
	m.deduplicated = counterOf("kommbridge_deduplicated_total").WithLabelValues()
	m.attachments = counterOf("kommbridge_attachments_total")
	m.violations = counterOf("kommbridge_reply_contract_violations_total")
	m.reloads = counterOf("kommbridge_config_reloads_total")
	m.deliveries = counterOf("kommbridge_deliveries_total")
	m.cut = counterOf("kommbridge_cut_total")
	down := named("kommbridge_store_degraded")
	m.storeDown = prometheus.NewGauge(prometheus.GaugeOpts{Name: down.Name, Help: down.Help})
	reg.MustRegister(m.storeDown)
	m.outages = counterOf("kommbridge_store_outages_total").WithLabelValues()
	m.callersGone = counterOf("kommbridge_callers_gone_total").WithLabelValues()
	m.leasesLost = counterOf("kommbridge_leases_lost_total")
	m.finishes = counterOf("kommbridge_finish_reasons_total")
	m.kbSearches = counterOf("kommbridge_kb_searches_total")
	m.kbFallbacks = counterOf("kommbridge_kb_keyword_fallbacks_total")
	m.kbDropped = counterOf("kommbridge_kb_citations_dropped_total")
	m.actionCalls = counterOf("kommbridge_action_calls_total")
	m.promises = counterOf("kommbridge_false_promises_total")
	m.notes = counterOf("kommbridge_handoff_notes_total")
	m.convs = counterOf("kommbridge_conversations_total")
	for _, r := range bridge.NoteResults {
		m.notes.WithLabelValues(r)
	}
	for _, a := range bridge.PromiseActions {
		m.promises.WithLabelValues(a)
	}
	m.actionTime = histogramOf("kommbridge_action_duration_seconds", []float64{.05, .1, .25, .5, 1, 2, 5, 10, 20})
	for _, f := range finishReasons {
		m.finishes.WithLabelValues(f)
	}
	for _, kind := range []string{"lock", "claim"} {
		m.leasesLost.WithLabelValues(kind)
	}
	for _, o := range kommbridge.Outcomes {
		m.latency.WithLabelValues(o)
	}
	for _, r := range kommbridge.HandoffReasons {
		m.handoffs.WithLabelValues(r)
	}
	for _, o := range attachmentOutcomes {
		m.attachments.WithLabelValues(o)
	}
	for _, r := range bridge.DeliveryResults {
		m.deliveries.WithLabelValues(r)
	}
	for _, what := range bridge.CutKinds {
		m.cut.WithLabelValues(what)
	}
	for _, r := range []string{"ok", "rejected"} {
		m.reloads.WithLabelValues(r)
	}
	m.limited.Add(0)
	m.deduplicated.Add(0)
	info := named("kommbridge_build_info")
	m.buildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: info.Name, Help: info.Help}, info.Labels)
	reg.MustRegister(m.buildInfo)
	m.Labels(nil, nil)
	return m
}

// Build sets kommbridge_build_info.
func (m *Metrics) Build(version, commit, goVersion string) {
	m.buildInfo.WithLabelValues(version, commit, goVersion).Set(1)
}

// Labels sets the bot ids and custom event names the configuration names
// (at start and on each reload); their series are created at zero. A bot
// id the configuration does not name is counted under "*" when a "*" bot
// answers it, else under Other: both bounded by the configuration.
func (m *Metrics) Labels(bots, events []string) {
	ls := &labelSet{bots: map[string]bool{Other: true}, events: map[string]bool{Other: true, "message": true, "invalid": true,
		kommbridge.EventWelcome: true, kommbridge.EventMedia: true}}
	for _, b := range bots {
		ls.bots[b] = true
	}
	for _, e := range events {
		ls.events[e] = true
	}
	if old := m.labels.Load(); old != nil {
		ls.actions = old.actions
	}
	m.labels.Store(ls)
	for b := range ls.bots {
		m.tokens.WithLabelValues(b, "in")
		m.tokens.WithLabelValues(b, "out")
		for _, o := range kommbridge.ConversationOutcomes {
			m.convs.WithLabelValues(b, o)
		}
	}
	for e := range ls.events {
		m.webhooks.WithLabelValues(e, "200")
	}
}

// Actions creates each action's series at zero: its names come from the
// configuration only.
func (m *Metrics) Actions(names []string) {
	ls := m.labels.Load()
	if ls == nil {
		ls = &labelSet{}
	}
	acts := map[string]bool{}
	for _, n := range names {
		acts[n] = true
		for _, k := range action.Kinds {
			m.actionCalls.WithLabelValues(n, k)
		}
	}
	m.labels.Store(&labelSet{bots: ls.bots, events: ls.events, actions: acts})
}

// Action records one action call (or one refused); it is the bridge's
// OnAction.
func (m *Metrics) Action(name, kind string, took time.Duration) {
	if ls := m.labels.Load(); ls == nil || !ls.actions[name] {
		name = Other
	}
	m.actionCalls.WithLabelValues(name, kind).Inc()
	if took > 0 {
		m.actionTime.WithLabelValues(name).Observe(took.Seconds())
	}
}

// KBResults are the results of a help-center search.
var KBResults = []string{"found", "not_found", "failed"}

// Bases creates each knowledge base's series at zero.
func (m *Metrics) Bases(names []string) {
	for _, n := range names {
		for _, r := range KBResults {
			m.kbSearches.WithLabelValues(n, r)
		}
		m.kbFallbacks.WithLabelValues(n)
		m.kbDropped.WithLabelValues(n)
	}
}

// Endpoints creates each model endpoint's error, retry and fallback series
// at zero.
func (m *Metrics) Endpoints(names []string) {
	for _, n := range names {
		for _, k := range errorKinds {
			m.modelErrors.WithLabelValues(n, k.Error())
		}
		m.retries.WithLabelValues(n)
		m.fallbacks.WithLabelValues(n)
	}
}

func (m *Metrics) bot(id string) string {
	ls := m.labels.Load()
	switch {
	case ls.bots[id]:
		return id
	case ls.bots["*"]:
		return "*"
	}
	return Other
}

func (m *Metrics) event(name string) string {
	if m.labels.Load().events[name] {
		return name
	}
	return Other
}

// named is the catalogue entry of name; it panics on a name not listed,
// which every test that builds Metrics would catch.
func named(name string) Metric {
	for _, m := range Catalog {
		if m.Name == name {
			return m
		}
	}
	panic("metrics: " + name + " is not in the catalogue")
}

// Catalog lists kommbridge's metrics; docs/operations.md's metrics table is
// this list. Each is registered by its name (kommbridge_breaker_open by
// Breakers), so the order here is only the table's.
var Catalog = []Metric{
	{"kommbridge_webhooks_total", "Webhooks by event and HTTP status.", []string{"event", "status"}},
	{"kommbridge_webhook_duration_seconds", "Webhook arrival to answer, by outcome.", []string{"outcome"}},
	{"kommbridge_model_request_duration_seconds", "One call to a model endpoint.", []string{"endpoint", "model"}},
	{"kommbridge_model_errors_total", "Failed model calls by endpoint and kind.", []string{"endpoint", "kind"}},
	{"kommbridge_model_retries_total", "Retried model calls by endpoint.", []string{"endpoint"}},
	{"kommbridge_model_fallbacks_total", "Calls to a fallback endpoint.", []string{"endpoint"}},
	{"kommbridge_tokens_total", "Tokens by bot and direction (in, out).", []string{"bot", "direction"}},
	{"kommbridge_handoffs_total", "Handoffs to people by reason.", []string{"reason"}},
	{"kommbridge_rate_limited_total", "Events answered with limits.message.", nil},
	{"kommbridge_deduplicated_total", "Repeated message keys answered from the dedupe record.", nil},
	{"kommbridge_attachments_total", "Attachments by outcome (ok, unsupported, failed).", []string{"outcome"}},
	{"kommbridge_reply_contract_violations_total", "Model replies that broke their format's contract.", []string{"format", "violation"}},
	{"kommbridge_config_reloads_total", "Configuration reloads by result (ok, rejected).", []string{"result"}},
	{"kommbridge_breaker_open", "1 while the endpoint is skipped after repeated failures.", []string{"endpoint", "position"}},
	{"kommbridge_deliveries_total", "Held answers posted later through Kommunicate's API, by result (delivered; failed: handed off instead; dropped: handed off meanwhile; joined: answered with a newer message; unsure: a send went out unanswered and was not found, not repeated).", []string{"result"}},
	{"kommbridge_cut_total", "Parts of incoming messages cut to their bounds, by what (message: text over limits.max_message_chars; attachments: files past media.max_attachments named together).", []string{"what"}},
	{"kommbridge_store_degraded", "1 while the shared store is unreachable and webhooks are answered without stored history.", nil},
	{"kommbridge_store_outages_total", "Times the shared store became unreachable.", nil},
	{"kommbridge_callers_gone_total", "Webhook callers that closed the connection before their answer, counted as they leave (the answer is made anyway and kept for the retry).", nil},
	{"kommbridge_leases_lost_total", "Locks and dedupe claims whose lease could not be renewed, by kind (lock, claim).", []string{"kind"}},
	{"kommbridge_finish_reasons_total", "Model answers by why the model stopped (stop, length: cut at max_tokens, tool_calls, content_filter, other).", []string{"reason"}},
	{"kommbridge_kb_searches_total", "Help-center searches by knowledge base and result (found; not_found: the help center does not answer the message; failed).", []string{"base", "result"}},
	{"kommbridge_kb_keyword_fallbacks_total", "Questions searched by keywords alone because the embeddings endpoint failed or was slow, by knowledge base.", []string{"base"}},
	{"kommbridge_kb_citations_dropped_total", "Source numbers a model cited that it was not given (never shown), by knowledge base.", []string{"base"}},
	{"kommbridge_conversations_total", "Conversations by bot and outcome (resolved by the bot; handed off: customer_request, missing_knowledge, model_failure, out_of_hours; reopened after a resolve; abandoned).", []string{"bot", "outcome"}},
	{"kommbridge_handoff_notes_total", "Handoff notes for the agents by result (posted; posted_known_only: without the model's part; failed: not delivered).", []string{"result"}},
	{"kommbridge_false_promises_total", "Replies that promised a person without handing off, by what was done (handoff: kept with a real handoff; strip: the promise taken out; allow: left).", []string{"action"}},
	{"kommbridge_action_calls_total", "Action calls by action and kind (ok, http_error, timeout, unreachable, bad_answer, limited, invalid_args, unverified, awaiting_confirmation, invalid_confirmation).", []string{"action", "kind"}},
	{"kommbridge_action_duration_seconds", "Calls to the business's APIs that were made, by action.", []string{"action"}},
	{"kommbridge_build_info", "1, labelled with the running build's version, commit and Go version.", []string{"version", "commit", "go_version"}},
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
			Name: named("kommbridge_breaker_open").Name, Help: named("kommbridge_breaker_open").Help,
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
		// The failure's own kind, not any sentinel its cause wraps.
		kind := Other
		var e *llm.Error
		if errors.As(a.Err, &e) && slices.Contains(errorKinds, e.Kind) {
			kind = e.Kind.Error()
		}
		m.modelErrors.WithLabelValues(a.Endpoint, kind).Inc()
	}
}

// CallerGone counts a webhook caller that closed its connection before
// the answer, as it happens.
func (m *Metrics) CallerGone() { m.callersGone.Inc() }

// Webhook records an answered webhook; it makes Metrics an adapter.Observer.
func (m *Metrics) Webhook(bot, event string, status int, d time.Duration, r *bridge.Result) {
	bot, event = m.bot(bot), m.event(event)
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
	for _, what := range r.Cut {
		m.cut.WithLabelValues(what).Inc()
	}
	if r.Violation != "" {
		m.violations.WithLabelValues(string(r.Format), r.Violation).Inc()
	}
	if r.Promise != "" && r.Outcome != kommbridge.OutcomeDuplicate {
		m.promises.WithLabelValues(r.Promise).Inc()
	}
	if k := r.Knowledge; k != nil && r.Outcome != kommbridge.OutcomeDuplicate {
		m.kbSearches.WithLabelValues(k.Base, k.Result()).Inc()
		if k.EmbedErr != nil {
			m.kbFallbacks.WithLabelValues(k.Base).Inc()
		}
		if k.Dropped > 0 {
			m.kbDropped.WithLabelValues(k.Base).Add(float64(k.Dropped))
		}
	}
	if r.FinishReason != "" && r.Outcome != kommbridge.OutcomeDuplicate {
		f := r.FinishReason
		if !slices.Contains(finishReasons, f) {
			f = Other
		}
		m.finishes.WithLabelValues(f).Inc()
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

// StoreOutage records the shared store going out (true) and coming back;
// it is the bridge's OnOutage.
func (m *Metrics) StoreOutage(down bool) {
	if down {
		m.outages.Inc()
		m.storeDown.Set(1)
	} else {
		m.storeDown.Set(0)
	}
}

// LeaseLost records a lease whose renewal failed.
func (m *Metrics) LeaseLost(kind string) { m.leasesLost.WithLabelValues(kind).Inc() }

// Delivery records a held answer's fate; it is the bridge's OnDelivery.
func (m *Metrics) Delivery(result string) { m.deliveries.WithLabelValues(result).Inc() }

// Conversation counts a conversation's outcome; it is the bridge's
// OnConversation.
func (m *Metrics) Conversation(bot, outcome string) {
	m.convs.WithLabelValues(m.bot(bot), outcome).Inc()
}

// Note counts a handoff note; it is the bridge's OnNote.
func (m *Metrics) Note(result string) { m.notes.WithLabelValues(result).Inc() }

// Handoff counts a handoff made outside a webhook's answer.
func (m *Metrics) Handoff(reason string) { m.handoffs.WithLabelValues(reason).Inc() }
