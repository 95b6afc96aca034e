package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kommbridge/kommbridge/adapter"
	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/media"
	"github.com/kommbridge/kommbridge/store/memory"
	redisstore "github.com/kommbridge/kommbridge/store/redis"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// errSilent is a failure already reported to the user.
var errSilent = errors.New("failed")

const usage = `kommbridge puts an OpenAI-compatible model behind a Kommunicate bot.

Usage:
  kommbridge [serve] [--config FILE]   run the webhook server (default)
  kommbridge check [--config FILE]     validate the configuration; exit 1 on any problem
  kommbridge version                   print the version

FILE defaults to ./config.yaml.
`

// run is the whole program; main only adds the process around it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "check":
		return check(args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "kommbridge", buildVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
	return errSilent
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// configFlag parses --config from args.
func configFlag(name string, args []string, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "config.yaml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return "", errSilent
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "unexpected argument %q\n", fs.Arg(0))
		return "", errSilent
	}
	return *path, nil
}

func check(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	path, err := configFlag("check", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path, getenv)
	if err != nil {
		reportConfig(stderr, path, err)
		return errSilent
	}
	fmt.Fprintf(stdout, "ok    %s: %d bot(s), model %s at %s\n", path, len(cfg.Bots), cfg.LLM.Model, cfg.LLM.BaseURL)
	return nil
}

func reportConfig(w io.Writer, path string, err error) {
	var p config.Problems
	if errors.As(err, &p) {
		fmt.Fprintf(w, "%s has %d problem(s):\n", path, len(p))
		for _, e := range p {
			fmt.Fprintf(w, "  - %v\n", e)
		}
		return
	}
	fmt.Fprintln(w, err)
}

func newLogger(c config.Log, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	var encoder zapcore.Encoder
	if c.Format == "console" {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	} else {
		encoder = zapcore.NewJSONEncoder(enc)
	}
	return zap.New(zapcore.NewCore(encoder, zapcore.AddSync(w), level)), nil
}

// Store is what serve needs of a store beyond the bridge's needs.
type Store interface {
	bridge.Store
	Ping(ctx context.Context) error
	Close() error
}

// app is everything serve wires together from a configuration.
type app struct {
	cfg    *config.Config
	log    *zap.Logger
	store  Store
	model  *llm.Client
	bridge *bridge.Bridge
}

func newApp(cfg *config.Config, log *zap.Logger) (*app, error) {
	l := cfg.Limits
	limited := l.Conversation.Rate > 0 || l.User.Rate > 0 || l.Global.Rate > 0
	var st Store
	var limiter bridge.Limiter
	if strings.HasPrefix(cfg.Store.URL, "redis") {
		rs, err := redisstore.New(cfg.Store.URL, redisstore.Options{
			HistoryTurns: cfg.Store.HistoryTurns,
			HistoryTTL:   cfg.Store.HistoryTTL.D(),
			DedupeTTL:    cfg.Store.DedupeTTL.D(),
			Lease:        cfg.Server.ReplyBudget.D() + 10*time.Second,
		})
		if err != nil {
			return nil, err
		}
		st = rs
		if limited {
			limiter = rs.NewLimiter(
				redisstore.Rate{Per: l.Conversation.Rate, Burst: l.Conversation.Burst},
				redisstore.Rate{Per: l.User.Rate, Burst: l.User.Burst},
				redisstore.Rate{Per: l.Global.Rate, Burst: l.Global.Burst})
		}
	} else {
		st = memory.New(memory.Options{
			HistoryTurns:     cfg.Store.HistoryTurns,
			HistoryTTL:       cfg.Store.HistoryTTL.D(),
			MaxConversations: cfg.Store.MaxConversations,
			DedupeTTL:        cfg.Store.DedupeTTL.D(),
		})
		if limited {
			limiter = memory.NewLimiter(memory.LimitOptions{
				Conversation: memory.Rate{Per: l.Conversation.Rate, Burst: l.Conversation.Burst},
				User:         memory.Rate{Per: l.User.Rate, Burst: l.User.Burst},
				Global:       memory.Rate{Per: l.Global.Rate, Burst: l.Global.Burst},
			})
		}
	}
	model, err := llm.New(llmConfig(cfg), log.Named("llm"))
	if err != nil {
		st.Close()
		return nil, err
	}
	b, err := bridge.New(cfg, bridge.Deps{Store: st, Model: model, Limiter: limiter, Media: newMedia(cfg, model), Log: log.Named("bridge")})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &app{cfg: cfg, log: log, store: st, model: model, bridge: b}, nil
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
		MaxDocumentChars:   m.MaxDocumentChars,
		TranscriptionModel: m.TranscriptionModel,
	}
	if m.TranscribeAudio {
		o.Transcriber = model
	}
	return media.New(o)
}

func llmConfig(cfg *config.Config) llm.Config {
	eps := []llm.Endpoint{llm.Endpoint(cfg.LLM.Endpoint)}
	for _, f := range cfg.LLM.Fallbacks {
		eps = append(eps, llm.Endpoint(f))
	}
	return llm.Config{
		Endpoints:       eps,
		MaxRetries:      cfg.LLM.MaxRetries,
		MaxConcurrency:  cfg.LLM.MaxConcurrency,
		BreakerFailures: cfg.LLM.Breaker.Failures,
		BreakerCooldown: cfg.LLM.Breaker.Cooldown.D(),
	}
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	path, err := configFlag("serve", args, stderr)
	if err != nil {
		return err
	}
	cfg, err := config.Load(path, getenv)
	if err != nil {
		reportConfig(stderr, path, err)
		return errSilent
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	a, err := newApp(cfg, log)
	if err != nil {
		return err
	}
	defer a.store.Close()
	if err := a.store.Ping(ctx); err != nil {
		log.Warn("store not reachable yet; /readyz fails until it is", zap.String("store", redact(cfg.Store.URL)), zap.Error(err))
	}
	if cfg.Server.Auth.Value == "" {
		log.Warn("server.auth.value is empty: anyone who can reach the webhook can use the bot")
	}
	api := adapter.NewServer(a.bridge, adapter.Options{
		WebhookPath:  cfg.Server.WebhookPath,
		AuthHeader:   cfg.Server.Auth.Header,
		AuthValue:    cfg.Server.Auth.Value,
		MaxBodyBytes: cfg.Server.MaxBodyBytes,
		LogContent:   cfg.Log.Content,
		Ready:        a.store.Ping,
	}, log.Named("http"))

	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      cfg.Server.ReplyBudget.D() + 5*time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("webhook", cfg.Server.WebhookPath),
		zap.String("model", cfg.LLM.Model), zap.Int("bots", len(cfg.Bots)), zap.String("version", buildVersion()))
	fmt.Fprintf(stdout, "kommbridge listening on %s\n", ln.Addr())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down; finishing in-flight webhooks", zap.Duration("grace", cfg.Server.ShutdownGrace.D()))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownGrace.D())
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// redact hides a password in a store URL.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}
