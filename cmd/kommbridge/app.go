package main

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge/adapter"
	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/kb"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/media"
	"github.com/kommbridge/kommbridge/metrics"
	"github.com/kommbridge/kommbridge/store/memory"
	redisstore "github.com/kommbridge/kommbridge/store/redis"
)

// Store is what serve needs of a store beyond the bridge's needs.
type Store interface {
	bridge.Store
	Ping(ctx context.Context) error
	Close() error
}

// app is everything serve, check and try wire together from a configuration.
type app struct {
	store  Store
	model  *llm.Client
	bridge *bridge.Bridge
	// knowledge serves the help centers; empty without knowledge bases.
	knowledge *kb.Library
	// degradable: webhooks are answered without the store while it is out
	// (store.on_outage: degrade), so an outage is "degraded", not "not ready".
	degradable bool
}

// newApp wires the store, the model client, media and the bridge from
// cfg. m, when not nil, counts model calls and deliveries.
func newApp(cfg *config.Config, log *zap.Logger, m *metrics.Metrics) (*app, error) {
	return newAppWith(cfg, log, m, nil, nil)
}

// newAppWith is newApp with the bridge asking wrap(model) instead of the
// model client itself (eval's answer cache), when wrap is set, and the
// bridge's collaborators changed by tweak (eval's action stubs).
func newAppWith(cfg *config.Config, log *zap.Logger, m *metrics.Metrics, wrap func(bridge.Model) bridge.Model, tweak func(*bridge.Deps)) (*app, error) {
	l := cfg.Limits
	limited := l.Conversation.Per > 0 || l.User.Per > 0 || l.Global.Per > 0
	var st Store
	var limiter bridge.Limiter
	var local bridge.Store     // stands in for Redis during an outage
	var pending bridge.Pending // held answers, durable across replicas
	if strings.HasPrefix(cfg.Store.URL, "redis") {
		redisstore.SetLogger(log.Named("redis"))
		rs, err := redisstore.New(cfg.Store.URL, redisstore.Options{
			HistoryTurns: cfg.Store.HistoryTurns,
			HistoryTTL:   cfg.Store.HistoryTTL.D(),
			DedupeTTL:    cfg.Store.DedupeTTL.D(),
			Lease:        cfg.Store.Lease.D(),
			OnLeaseLost: func(kind string, err error) {
				log.Warn("a Redis lease was not renewed or released; it runs out by itself within store.lease", zap.String("kind", kind), zap.Error(err))
				if m != nil {
					m.LeaseLost(kind)
				}
			},
		})
		if err != nil {
			return nil, err
		}
		st, pending = rs, rs
		if cfg.Store.OnOutage == config.OnOutageDegrade {
			local = memory.New(memory.Options{
				HistoryTurns:     cfg.Store.HistoryTurns,
				HistoryTTL:       cfg.Store.HistoryTTL.D(),
				MaxConversations: 10_000,
				DedupeTTL:        cfg.Store.DedupeTTL.D(),
			})
		}
		if limited {
			limiter = rs.NewLimiter(l.Conversation, l.User, l.Global)
		}
	} else {
		st = memory.New(memory.Options{
			HistoryTurns:     cfg.Store.HistoryTurns,
			HistoryTTL:       cfg.Store.HistoryTTL.D(),
			MaxConversations: cfg.Store.MaxConversations,
			DedupeTTL:        cfg.Store.DedupeTTL.D(),
			MaxDedupe:        cfg.Store.MaxDedupe,
		})
		if limited {
			limiter = memory.NewLimiter(memory.LimitOptions{
				Conversation: l.Conversation, User: l.User, Global: l.Global,
			})
		}
	}
	lc := llmConfig(cfg)
	if m != nil {
		lc.Observer = m
	}
	model, err := llm.New(lc, log.Named("llm"))
	if err != nil {
		st.Close()
		return nil, err
	}
	var bm bridge.Model = model
	if wrap != nil {
		bm = wrap(model)
	}
	lib, err := kb.LoadLibrary(cfg, kbHTTP)
	if err != nil {
		st.Close()
		return nil, err
	}
	deps := bridge.Deps{Store: st, Local: local, Pending: pending, Model: bm, Limiter: limiter, Media: newMedia(cfg, model), Log: log.Named("bridge"), LogContent: cfg.Log.Content,
		TakeoverAfter: cfg.Kommunicate.TakeoverAfter.D()}
	deps.Knowledge = lib
	if g, ok := st.(bridge.Gaps); ok {
		deps.Gaps = g
	}
	deps.ConfirmSecret = confirmSecret(cfg, st, log)
	if o, ok := st.(bridge.Outcomes); ok {
		deps.Outcomes = o
	}
	if m != nil {
		deps.OnAction, deps.OnNote, deps.OnConversation = m.Action, m.Note, m.Conversation
	}
	if cfg.Kommunicate.APIKey != "" {
		deps.Deliver = adapter.NewKommunicateAPI(cfg.Kommunicate.APIBase, cfg.Kommunicate.APIKey)
	}
	if m != nil {
		deps.OnDelivery = m.Delivery
		deps.OnHandoff = m.Handoff
		deps.OnOutage = m.StoreOutage
	}
	if tweak != nil {
		tweak(&deps)
	}
	b, err := bridge.New(cfg, deps)
	if err != nil {
		lib.Close()
		st.Close()
		return nil, err
	}
	return &app{store: st, model: model, bridge: b, knowledge: lib, degradable: local != nil}, nil
}

// confirmSecret is the key confirmation buttons are signed with: the
// configuration's, else the one kept in Redis for every replica, else
// (the memory store, or Redis unreachable at start) one of this process,
// under which a button pressed on another replica is refused, never run.
func confirmSecret(cfg *config.Config, st Store, log *zap.Logger) []byte {
	if s := cfg.Confirmations.Secret; s != "" {
		return []byte(s)
	}
	if len(cfg.Actions) == 0 {
		return nil
	}
	shared, ok := st.(interface {
		SharedSecret(ctx context.Context, name string) ([]byte, error)
	})
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	secret, err := shared.SharedSecret(ctx, "confirmations")
	if err != nil {
		log.Warn("confirmation secret not read from the store; this replica signs with its own until restarted (set confirmations.secret to share one)", zap.Error(err))
		return nil
	}
	return secret
}

// kbHTTP calls the embeddings endpoints while webhooks wait.
var kbHTTP = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}

// close releases the app's store and indexes.
func (a *app) close() {
	a.knowledge.Close()
	a.store.Close()
}

// ready is /readyz's check: the store answers, and the bridge is using it
// again after an outage (it leaves a failed store alone for a few seconds).
func (a *app) ready(ctx context.Context) error {
	if err := a.store.Ping(ctx); err != nil {
		return err
	}
	if a.bridge.Degraded() {
		return errors.New("the store answers again; webhooks use it again within seconds")
	}
	return nil
}

func newMedia(cfg *config.Config, model *llm.Client) *media.Reader {
	m := cfg.Media
	o := media.Options{
		Fetch: media.FetchOptions{
			MaxBytes:     m.MaxBytes,
			AllowedHosts: m.AllowedHosts,
			Timeout:      m.FetchTimeout.D(),
		},
		InlineImages:       m.InlineImages,
		MaxAttachments:     m.MaxAttachments,
		MaxTotalBytes:      m.MaxTotalBytes,
		MaxParallel:        m.MaxParallelFetches,
		MaxDocumentChars:   m.MaxDocumentChars,
		TranscriptionModel: m.TranscriptionModel,
	}
	if m.TranscribeAudio {
		o.Transcriber = model
	}
	return media.New(o)
}

func llmConfig(cfg *config.Config) llm.Config {
	eps := []llm.Endpoint{endpoint(cfg.LLM.Endpoint)}
	for _, f := range cfg.LLM.Fallbacks {
		eps = append(eps, endpoint(f))
	}
	return llm.Config{
		Endpoints:        eps,
		MaxRetries:       cfg.LLM.MaxRetries,
		MaxConcurrency:   cfg.LLM.MaxConcurrency,
		BreakerFailures:  cfg.LLM.Breaker.Failures,
		BreakerCooldown:  cfg.LLM.Breaker.Cooldown.D(),
		MaxResponseBytes: cfg.LLM.MaxResponseBytes,
	}
}

func endpoint(e config.Endpoint) llm.Endpoint {
	return llm.Endpoint{BaseURL: e.BaseURL, APIKey: e.APIKey, APIType: string(e.APIType), APIVersion: e.APIVersion,
		Model: e.Model, MaxCompletionTokens: e.MaxCompletionTokens, Headers: e.Headers, GatewayRetries: e.GatewayRetries}
}

// keySources says, per endpoint, where its API key and each of its extra
// headers came from: "host: key from X, header H from Y", never a value.
func keySources(cfg *config.Config) []string {
	from := func(e config.Endpoint) string {
		s := llm.EndpointName(e.BaseURL) + ": key from " + e.KeyFrom
		if e.APIKey == "" {
			s = llm.EndpointName(e.BaseURL) + ": no key"
		}
		for _, h := range slices.Sorted(maps.Keys(e.Headers)) {
			s += ", header " + h + " from " + e.HeadersFrom[h]
			if e.Headers[h] == "" {
				s += " (empty)"
			}
		}
		return s
	}
	out := []string{from(cfg.LLM.Endpoint)}
	for _, f := range cfg.LLM.Fallbacks {
		out = append(out, from(f))
	}
	if j := cfg.Eval.Judge; j != nil {
		out = append(out, from(*j)+" (eval judge)")
	}
	for _, k := range cfg.Knowledge {
		if e := k.Embeddings; e != nil {
			out = append(out, from(e.Endpoint())+" (knowledge "+k.Name+" embeddings)")
		}
	}
	return out
}

// redact hides a password in a store URL.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if u.User == nil {
			return raw
		}
		return u.Redacted()
	}
	return "(unparsable URL)"
}
