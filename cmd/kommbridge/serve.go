package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge/adapter"
	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/metrics"
)

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	path, err := configFlag("serve", args, stdout, stderr)
	if err != nil || path == "" {
		return err
	}
	cfg, err := config.Load(path, getenv, bridge.CheckTemplates)
	if err != nil {
		reportConfig(stderr, path, err)
		return errSilent
	}
	if problem := cfg.AuthProblem(); problem != "" {
		fmt.Fprintf(stderr, "kommbridge: not serving an open webhook: %s\n", problem)
		return errSilent
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	setMemoryLimit("/", getenv, log)
	m := metrics.New()
	a, err := newApp(cfg, log, m)
	if err != nil {
		return err
	}
	defer a.close()
	m.Breakers(a.model)
	m.Endpoints(a.model.Endpoints())
	bi := buildInfo()
	m.Build(bi.Version, bi.Commit, bi.Go)
	m.Labels(metricLabels(cfg))
	m.Bases(baseNames(cfg))
	m.Actions(actionNames(cfg))
	if err := a.store.Ping(ctx); err != nil {
		log.Warn("store not reachable yet; /readyz fails until it is", zap.String("store", redact(cfg.Store.URL)), zap.Error(err))
	}
	if cfg.Server.Auth.Disabled {
		log.Warn("server.auth.disabled is true: anyone who can reach the webhook can use the bot")
	}
	for _, w := range cfg.Warnings() {
		log.Warn(w)
	}
	api := adapter.NewServer(a.bridge, adapter.Options{
		WebhookPath:  cfg.Server.WebhookPath,
		AuthHeader:   cfg.Server.Auth.Header,
		AuthValue:    cfg.Server.Auth.Value,
		MaxBodyBytes: cfg.Server.MaxBodyBytes,
		LogContent:   cfg.Log.Content,
		Masks:        cfg.Privacy.Masks(),
		Ready:        a.ready,
		Degradable:   a.degradable,
		Metrics:      m.Handler(),
		Observer:     m,
	}, log.Named("http"))

	ln, err := net.Listen("tcp", cfg.Server.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Above the longest valid reply_budget (under 30s), so that any
		// budget set by a reload can be written back.
		WriteTimeout: 35 * time.Second,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     zap.NewStdLog(log.Named("http")),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if cfg.Server.PprofAddr != "" {
		stopPprof, err := servePprof(cfg.Server.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stopPprof()
	}

	// Watch before announcing the address, so no change is missed.
	r := newReloader(path, getenv, cfg, a, m, log.Named("reload"))
	// Background loops: reloading, and taking over other replicas' held answers.
	bctx, stopBackground := context.WithCancel(ctx)
	var background sync.WaitGroup
	background.Go(func() { r.run(bctx) })
	background.Go(func() { a.bridge.Recover(bctx, cfg.Kommunicate.TakeoverAfter.D()/3) })
	background.Go(func() {
		// Outcomes that silence decides (resolved by the bot, abandoned),
		// counted once a minute.
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-bctx.Done():
				return
			case <-t.C:
				a.bridge.Sweep(bctx, cfg.Outcomes.ResolveWindow.D())
			}
		}
	})
	defer func() { stopBackground(); background.Wait() }()

	log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("webhook", cfg.Server.WebhookPath),
		zap.String("model", cfg.LLM.Model), zap.Strings("api_keys", keySources(cfg)), zap.Int("bots", len(cfg.Bots)), zap.String("store", redact(cfg.Store.URL)),
		zap.String("version", buildVersion()))
	fmt.Fprintf(stdout, "kommbridge listening on %s\n", ln.Addr())

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	grace := time.Duration(r.grace.Load())
	log.Info("shutting down; finishing in-flight webhooks", zap.Duration("grace", grace))
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := a.bridge.Drain(sctx); err != nil {
		log.Warn("stopping with held answers undelivered; with Redis another replica delivers them", zap.Error(err))
	}
	log.Info("stopped")
	return nil
}

// reloader applies a changed config.yaml or prompt file, on SIGHUP or when
// the files change. A configuration that fails validation is rejected and
// the one in force keeps serving.
type reloader struct {
	path    string
	getenv  func(string) string
	current *config.Config // the last configuration loaded
	running *config.Config // the one serve started with: what restart-only keys still are
	grace   atomic.Int64   // server.shutdown_grace in force, for serve's shutdown
	app     *app
	metrics *metrics.Metrics
	log     *zap.Logger
	hup     chan os.Signal
	w       *fsnotify.Watcher // nil when files cannot be watched
}

// newReloader starts listening for SIGHUP and watching the files; run
// acts on them.
func newReloader(path string, getenv func(string) string, cfg *config.Config, a *app, m *metrics.Metrics, log *zap.Logger) *reloader {
	r := &reloader{path: path, getenv: getenv, current: cfg, running: cfg, app: a, metrics: m, log: log, hup: make(chan os.Signal, 1)}
	r.grace.Store(int64(cfg.Server.ShutdownGrace.D()))
	signal.Notify(r.hup, syscall.SIGHUP)
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.Warn("cannot watch the config file; reload with SIGHUP", zap.Error(err))
		return r
	}
	r.w = w
	r.watch(w)
	return r
}

func (r *reloader) run(ctx context.Context) {
	defer signal.Stop(r.hup)
	var events chan fsnotify.Event
	var errs chan error
	if r.w != nil {
		defer r.w.Close()
		events, errs = r.w.Events, r.w.Errors
	}
	w := r.w
	// Editors write a file in several steps: wait for them to settle.
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.hup:
			r.reload("SIGHUP")
		case ev := <-events:
			if r.watched(ev.Name) && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
				settle.Reset(200 * time.Millisecond)
			}
		case err := <-errs:
			r.log.Warn("watching the config file", zap.Error(err))
		case <-settle.C:
			r.reload("file change")
			if w != nil {
				r.watch(w)
			}
		}
	}
}

// files are the config file, every prompt file and every index file,
// absolute: a rebuilt index is loaded as an edited prompt is.
func (r *reloader) files() []string {
	out := []string{abs(r.path)}
	for _, k := range r.current.Knowledge {
		out = append(out, abs(r.current.Resolve(k.Index)))
	}
	for _, b := range r.current.Bots {
		if b.SystemPromptFile != "" {
			p := b.SystemPromptFile
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(r.path), p)
			}
			out = append(out, abs(p))
		}
	}
	return out
}

// watch watches the directories holding the files, so that a file
// replaced by rename (as editors and Kubernetes config maps do) is seen.
func (r *reloader) watch(w *fsnotify.Watcher) {
	for _, f := range r.files() {
		if err := w.Add(filepath.Dir(f)); err != nil {
			r.log.Warn("cannot watch", zap.String("dir", filepath.Dir(f)), zap.Error(err))
		}
	}
}

func (r *reloader) watched(name string) bool {
	name = abs(name)
	for _, f := range r.files() {
		if f == name {
			return true
		}
	}
	return false
}

func (r *reloader) reload(why string) {
	cfg, err := config.Load(r.path, r.getenv, bridge.CheckTemplates)
	if err != nil {
		r.metrics.Reload(false)
		r.log.Error("config reload rejected; the previous configuration keeps serving", zap.String("trigger", why), zap.Error(err))
		return
	}
	// The help centers first: a bot of the new configuration may name a
	// new one. A failed load leaves the old indexes and configuration.
	if err := r.app.knowledge.Reload(cfg); err != nil {
		r.metrics.Reload(false)
		r.log.Error("config reload rejected; the previous configuration keeps serving", zap.String("trigger", why), zap.Error(err))
		return
	}
	if err := r.app.bridge.Reload(cfg); err != nil {
		r.metrics.Reload(false)
		r.log.Error("config reload rejected; the previous configuration keeps serving", zap.String("trigger", why), zap.Error(err))
		return
	}
	r.metrics.Labels(metricLabels(cfg))
	r.metrics.Bases(baseNames(cfg))
	r.metrics.Actions(actionNames(cfg))
	r.grace.Store(int64(cfg.Server.ShutdownGrace.D()))
	if keys := restartKeys(r.running, cfg); len(keys) > 0 {
		r.log.Warn("these keys differ from the running configuration and take effect only on restart; the rest is in force",
			zap.Strings("keys", keys))
	}
	r.current = cfg
	r.metrics.Reload(true)
	r.log.Info("config reloaded", zap.String("trigger", why), zap.Int("bots", len(cfg.Bots)))
}

// actionNames are the actions' names, the values of metrics' action
// label.
func actionNames(cfg *config.Config) []string {
	var out []string
	for _, a := range cfg.Actions {
		out = append(out, a.Name)
	}
	return out
}

// baseNames are the knowledge bases' names, the values of metrics' base
// label.
func baseNames(cfg *config.Config) []string {
	var out []string
	for _, k := range cfg.Knowledge {
		out = append(out, k.Name)
	}
	return out
}

// metricLabels are the bot ids and custom event names of cfg: the only
// values, with "other", that metric labels take.
func metricLabels(cfg *config.Config) (bots, events []string) {
	for _, b := range cfg.Bots {
		bots = append(bots, b.ID)
		for name := range b.Events {
			events = append(events, name)
		}
	}
	return bots, events
}

// reloadable are the keys outside bots that a reload applies; every other
// key of the configuration is read once, at start.
var reloadable = map[string]bool{
	"knowledge":             true,
	"actions":               true,
	"confirmations.ttl":     true,
	"confirmations.yes":     true,
	"confirmations.no":      true,
	"server.reply_budget":   true,
	"server.shutdown_grace": true,
	"limits.message":        true,
	"limits.busy_message":   true,
}

// restartKeys names, by their YAML path, the keys whose value in next
// differs from running and which a reload cannot apply.
func restartKeys(running, next *config.Config) []string {
	var out []string
	var walk func(path string, a, b reflect.Value)
	walk = func(path string, a, b reflect.Value) {
		if reloadable[path] || path == "bots" {
			return
		}
		if a.Kind() == reflect.Struct {
			t := a.Type()
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				tag := strings.Split(f.Tag.Get("yaml"), ",")
				if tag[0] == "-" || !f.IsExported() {
					continue
				}
				p := path
				switch {
				case len(tag) > 1 && tag[1] == "inline":
				case path == "":
					p = tag[0]
				default:
					p = path + "." + tag[0]
				}
				walk(p, a.Field(i), b.Field(i))
			}
			return
		}
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			out = append(out, path)
		}
	}
	walk("", reflect.ValueOf(*running), reflect.ValueOf(*next))
	return out
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

// servePprof serves the runtime profiles on their own listener, never on
// the webhook's.
func servePprof(addr string, log *zap.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server.pprof_addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("pprof listening", zap.String("addr", ln.Addr().String()))
	return func() { srv.Close() }, nil
}
