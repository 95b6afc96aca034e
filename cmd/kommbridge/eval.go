package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/eval"
	"github.com/kommbridge/kommbridge/llm"
)

// errEvalFailed: a case fell below --min-pass (exit 1).
var errEvalFailed = errors.New("eval: cases below the minimum pass rate")

// errCannotRun: the suites or the configuration could not be run (exit 2),
// told apart from failing cases so that CI can tell the two.
var errCannotRun = errors.New("eval: cannot run")

// evalCmd runs conversation suites through the webhook's pipeline and
// reports them; `eval init` writes a starter suite.
func evalCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "init" {
		return evalInit(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	path := fs.String("config", "config.yaml", "configuration file")
	botID := fs.String("bot", "", "the botId every case talks to (default: the suite's, else the first bot)")
	repeat := fs.Int("repeat", 1, "runs of every case (models are not deterministic)")
	conc := fs.Int("concurrency", 4, "conversations at once")
	minPass := fs.String("min-pass", "all", `the pass rate a case needs, "all" or 0 to 1 (0.8) or a percentage (80%); exit 1 below it`)
	against := fs.String("against", "", "a second configuration to run the same suites with, and compare")
	jsonOut := fs.String("json", "", "write the results as JSON to this file")
	junitOut := fs.String("junit", "", "write the results as JUnit XML to this file")
	htmlOut := fs.String("html", "", "write a self-contained HTML report to this file")
	allowFiles := fs.Bool("allow-files", false, "let suites attach local files outside their own folder")
	baseline := fs.Bool("baseline", false, "with --against: the first configuration is the baseline, and only its regressions fail")
	cacheDir := fs.String("cache", "", "keep model answers (the judge's too) in this directory, by request: a rerun of an unchanged suite calls no model")
	rerun := fs.String("rerun-failures", "", "run only the cases that failed in this JSON report (--json)")
	suitesArgs, err := parseFlags(fs, args, true, stdout, stderr)
	if err != nil || suitesArgs == nil {
		if err == errSilent {
			return errCannotRun
		}
		return err
	}
	min, err := parseMinPass(*minPass)
	if err != nil || *repeat < 1 || *conc < 1 {
		fmt.Fprintf(stderr, "kommbridge eval: --min-pass must be all, 0 to 1 or a percentage (got %q); --repeat and --concurrency at least 1\n", *minPass)
		return errCannotRun
	}
	if len(suitesArgs) == 0 {
		suitesArgs = []string{"evals"}
	}
	if *baseline && *against == "" {
		fmt.Fprintln(stderr, "kommbridge eval: --baseline goes with --against")
		return errCannotRun
	}
	suites, err := eval.LoadWith(eval.LoadOptions{AllowFiles: *allowFiles}, suitesArgs...)
	if err != nil {
		fmt.Fprintf(stderr, "kommbridge eval: %v\n", err)
		return errCannotRun
	}
	if *rerun != "" {
		f, err := os.Open(*rerun)
		if err != nil {
			fmt.Fprintf(stderr, "kommbridge eval: --rerun-failures: %v\n", err)
			return errCannotRun
		}
		failed, err := eval.FailedIn(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(stderr, "kommbridge eval: --rerun-failures %s: %v\n", *rerun, err)
			return errCannotRun
		}
		if suites = eval.Only(suites, failed); len(suites) == 0 {
			fmt.Fprintf(stdout, "no case failed in %s: nothing to run\n", *rerun)
			return nil
		}
	}
	var cache *eval.Cache
	if *cacheDir != "" {
		cache = &eval.Cache{Dir: *cacheDir}
	}
	files, err := serveFiles(suites)
	if err != nil {
		fmt.Fprintf(stderr, "kommbridge eval: %v\n", err)
		return errCannotRun
	}
	defer files.close()
	opts := eval.Options{Repeat: *repeat, Concurrency: *conc, Bot: *botID, FileURL: files.url}
	progress := isTerminal(stderr)
	runWith := func(cfgPath string) (*eval.Summary, error) {
		cfg, err := config.Load(cfgPath, getenv, bridge.CheckTemplates)
		if err != nil {
			reportConfig(stderr, cfgPath, err)
			return nil, errCannotRun
		}
		a, judge, err := evalApp(cfg, files.host, cache, eval.StubActions(suites), stderr)
		if err != nil {
			fmt.Fprintf(stderr, "kommbridge eval: %s: %v\n", cfgPath, err)
			return nil, errCannotRun
		}
		defer a.close()
		o := opts
		o.Judge, o.DefaultBot = judge, cfg.Bots[0].ID
		if o.DefaultBot == "*" {
			o.DefaultBot = "eval-bot"
		}
		if progress {
			o.Progress = func(done, total int) { drawProgress(stderr, cfgPath, done, total) }
		}
		runs := eval.RunSuites(ctx, a.bridge, suites, o)
		if progress {
			fmt.Fprint(stderr, "\r\033[K")
		}
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "kommbridge eval: interrupted after %d run(s) of %s\n", len(runs), cfgPath)
			return nil, errCannotRun
		}
		return eval.Summarize(cfgPath, runs, cfg.Eval.Prices, min), nil
	}
	sum, err := runWith(*path)
	if err != nil {
		return err
	}
	report := eval.Report{Summary: sum, Baseline: *baseline}
	if *against != "" {
		if report.Against, err = runWith(*against); err != nil {
			return err
		}
	}
	report.WriteText(stdout)
	if cache != nil {
		fmt.Fprintf(stdout, "cache %s: %d answer(s) reused, %d asked\n", cache.Dir, cache.Hits.Load(), cache.Misses.Load())
	}
	for _, out := range []struct {
		path  string
		write func(io.Writer) error
	}{{*jsonOut, report.WriteJSON}, {*junitOut, report.WriteJUnit}, {*htmlOut, report.WriteHTML}} {
		if out.path == "" {
			continue
		}
		if err := writeFile(out.path, out.write); err != nil {
			fmt.Fprintf(stderr, "kommbridge eval: %v\n", err)
			return errCannotRun
		}
	}
	if failing := report.Failing(); len(failing) > 0 {
		if report.Against != nil {
			fmt.Fprintf(stdout, "\nfails: %s\n", strings.Join(failing, "; "))
		}
		return errEvalFailed
	}
	return nil
}

// evalApp builds the pipeline for an eval: the configuration's bots and
// model, with an in-process memory store (each case its own
// conversation), no rate limits, no delivery through Kommunicate, and the
// suites' stubs in place of the business's APIs; and
// the judge: eval.judge, else the primary endpoint.
func evalApp(cfg *config.Config, fileHost string, cache *eval.Cache, stub func(string, map[string]any) (int, []byte, bool), stderr io.Writer) (*app, eval.Judge, error) {
	cfg.Store.URL = "memory://"
	cfg.Limits.Conversation, cfg.Limits.User, cfg.Limits.Global = kommbridge.Rate{}, kommbridge.Rate{}, kommbridge.Rate{}
	for i := range cfg.Bots {
		cfg.Bots[i].Async.Enabled = false
	}
	if fileHost != "" {
		cfg.Media.AllowedHosts = append(cfg.Media.AllowedHosts, fileHost)
	}
	log, err := newLogger(config.Log{Level: "error", Format: "console"}, stderr)
	if err != nil {
		return nil, nil, err
	}
	var wrap func(bridge.Model) bridge.Model
	if cache != nil {
		wrap = func(m bridge.Model) bridge.Model {
			return cache.Wrap(m, endpointsSalt(append([]config.Endpoint{cfg.LLM.Endpoint}, cfg.LLM.Fallbacks...)...))
		}
	}
	a, err := newAppWith(cfg, log, nil, wrap, func(d *bridge.Deps) { d.ActionStub = stub })
	if err != nil {
		return nil, nil, err
	}
	var judgeModel eval.Completer = a.model
	salt := endpointsSalt(append([]config.Endpoint{cfg.LLM.Endpoint}, cfg.LLM.Fallbacks...)...)
	if j := cfg.Eval.Judge; j != nil {
		c, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{endpoint(*j)}, MaxRetries: cfg.LLM.MaxRetries}, log.Named("judge"))
		if err != nil {
			a.close()
			return nil, nil, err
		}
		judgeModel, salt = c, endpointsSalt(*j)
	}
	if cache != nil {
		judgeModel = cache.Wrap(judgeModel, "judge "+salt)
	}
	return a, eval.ModelJudge{Model: judgeModel}, nil
}

// endpointsSalt names what answers a request beyond it: each endpoint's
// URL and default model, for the answer cache.
func endpointsSalt(eps ...config.Endpoint) string {
	var b strings.Builder
	for _, e := range eps {
		fmt.Fprintf(&b, "%s %s %s;", e.BaseURL, e.APIType, e.Model)
	}
	return b.String()
}

func parseMinPass(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "all" {
		return 1, nil
	}
	scale := 1.0
	if strings.HasSuffix(s, "%") {
		s, scale = strings.TrimSuffix(s, "%"), 100
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f/scale > 1 {
		return 0, fmt.Errorf("bad --min-pass %q", s)
	}
	return f / scale, nil
}

func drawProgress(w io.Writer, label string, done, total int) {
	const width = 30
	filled := done * width / total
	fmt.Fprintf(w, "\r\033[K%s [%s%s] %d/%d", label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, total)
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fileServer serves the local files a suite attaches, on loopback, for the
// pipeline to fetch as it fetches Kommunicate's: only those files, by
// number.
type fileServer struct {
	host  string
	srv   *http.Server
	paths map[string]string // absolute path -> URL; read-only once served
}

func serveFiles(suites []*eval.Suite) (*fileServer, error) {
	fsrv := &fileServer{paths: map[string]string{}}
	var files []string
	for _, s := range suites {
		for _, f := range s.LocalFiles() {
			p, err := filepath.Abs(f)
			if err != nil {
				return nil, err
			}
			files = append(files, p)
		}
	}
	if len(files) == 0 {
		return fsrv, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	fsrv.host = ln.Addr().String()
	mux := http.NewServeMux()
	for i, p := range files {
		if _, ok := fsrv.paths[p]; ok {
			continue
		}
		route := fmt.Sprintf("/f/%d", i) // the name travels in the attachment, not the path
		fsrv.paths[p] = "http://" + fsrv.host + route
		mux.HandleFunc("GET "+route, func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, p) })
	}
	fsrv.srv = &http.Server{Handler: mux}
	go fsrv.srv.Serve(ln)
	return fsrv, nil
}

func (f *fileServer) url(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	u, ok := f.paths[abs]
	if !ok {
		return "", fmt.Errorf("attachment %s is not served", path)
	}
	return u, nil
}

func (f *fileServer) close() {
	if f.srv != nil {
		f.srv.Close()
	}
}

// evalInit writes a starter suite from transcripts.
func evalInit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval init", flag.ContinueOnError)
	from := fs.String("from", "", "JSON Lines of messages: `kommbridge try --transcript` files, or an export of conversations")
	out := fs.String("out", "evals/starter.yaml", `where to write the suite ("-" for standard output)`)
	bot := fs.String("bot", "", "the botId the suite talks to")
	max := fs.Int("max", 50, "the most cases to write")
	force := fs.Bool("force", false, "overwrite --out if it exists")
	words, err := parseFlags(fs, args, false, stdout, stderr)
	if err != nil || words == nil {
		if err == errSilent {
			return errCannotRun
		}
		return err
	}
	cannot := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "kommbridge eval init: "+format+"\n", a...)
		return errCannotRun
	}
	if *from == "" {
		return cannot("--from names the transcript file")
	}
	in, err := os.Open(*from)
	if err != nil {
		return cannot("%v", err)
	}
	defer in.Close()
	convs, err := eval.ReadTranscripts(in)
	if err != nil {
		return cannot("%s: %v", *from, err)
	}
	if *out == "-" {
		if _, err := eval.WriteStarter(stdout, convs, *bot, filepath.Base(*from), *max); err != nil {
			return cannot("%v", err)
		}
		return nil
	}
	if _, err := os.Stat(*out); err == nil && !*force {
		return cannot("%s exists (--force overwrites it)", *out)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return cannot("%v", err)
	}
	f, err := os.Create(*out)
	if err != nil {
		return cannot("%v", err)
	}
	n, err := eval.WriteStarter(f, convs, *bot, filepath.Base(*from), *max)
	if cerr := f.Close(); err == nil {
		err = cerr // a write the disk refused shows at Close
	}
	if err != nil {
		return cannot("%s: %v", *out, err)
	}
	fmt.Fprintf(stdout, "wrote %d case(s) from %d conversation(s) to %s\n", n, len(convs), *out)
	return nil
}
