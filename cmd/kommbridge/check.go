package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge/action"
	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/kb"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/media"
)

// check validates the configuration, then reaches every model endpoint and
// the store, printing one verdict per item with the fix for a failure.
func check(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	pathFlag := fs.String("config", "config.yaml", "configuration file")
	offline := fs.Bool("offline", false, "only validate the file; reach no endpoint or store")
	probe := fs.Bool("probe", false, fmt.Sprintf("ask the primary endpoint, with at most %d tiny calls per model, which features it honours, and recommend each bot's reply_format", llm.ProbeCalls))
	write := fs.Bool("write", false, "with --probe, write the recommendations into the config file (comments kept)")
	words, err := parseFlags(fs, args, false, stdout, stderr)
	if err != nil || words == nil {
		return err
	}
	path := *pathFlag
	cfg, err := config.Load(path, getenv, bridge.CheckTemplates)
	if err != nil {
		reportConfig(stderr, path, err)
		return errSilent
	}
	fmt.Fprintf(stdout, "ok    config %s: %d bot(s)\n", path, len(cfg.Bots))
	failed := false
	if problem := cfg.AuthProblem(); problem != "" {
		failed = true
		fmt.Fprintf(stdout, "FAIL  webhook auth: %s\n", problem)
	} else if cfg.Server.Auth.Disabled {
		fmt.Fprintf(stdout, "warn  webhook auth: off (server.auth.disabled): anyone who can reach the webhook can use the bot\n")
	} else {
		fmt.Fprintf(stdout, "ok    webhook auth: %s from %s\n", cfg.Server.Auth.Header, cfg.Server.Auth.ValueFrom)
	}
	for _, ks := range keySources(cfg) {
		fmt.Fprintf(stdout, "ok    api key %s\n", ks)
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stdout, "warn  %s\n", w)
	}
	if *offline {
		if failed {
			return errSilent
		}
		return nil
	}
	if *write && !*probe {
		fmt.Fprintln(stderr, "--write goes with --probe")
		return errSilent
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if !checkKnowledge(ctx, cfg, stdout) {
		failed = true
	}
	// The indexes are checked above, each on its own line; the rest is
	// checked without them.
	bare := *cfg
	bare.Knowledge = nil
	bare.Bots = slices.Clone(cfg.Bots)
	for i := range bare.Bots {
		bare.Bots[i].Knowledge = nil
	}
	a, err := newApp(&bare, zap.NewNop(), nil)
	if err != nil {
		fmt.Fprintf(stdout, "FAIL  %v\n", err)
		return errSilent
	}
	defer a.close()
	eps := append([]config.Endpoint{cfg.LLM.Endpoint}, cfg.LLM.Fallbacks...)
	for i, st := range a.model.Check(ctx) {
		if st.Warn != "" {
			fmt.Fprintf(stdout, "warn  model %s at %s: %s\n", st.Model, st.Endpoint, st.Warn)
		}
		if st.Err != nil {
			failed = true
			keyPath := "llm.api_key (or OPENAI_API_KEY when the file sets neither llm.api_key nor llm.base_url)"
			if i > 0 {
				keyPath = fmt.Sprintf("llm.fallbacks[%d].api_key", i-1)
			}
			fmt.Fprintf(stdout, "FAIL  model %s at %s: %v\n", st.Model, st.Endpoint, advice(st.Err, keyPath, eps[i].APIKey == ""))
		} else {
			fmt.Fprintf(stdout, "ok    model %s at %s (%s)\n", st.Model, st.Endpoint, st.Note)
		}
	}
	if j := cfg.Eval.Judge; j != nil {
		jc, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{endpoint(*j)}}, zap.NewNop())
		if err == nil {
			for _, st := range jc.Check(ctx) {
				err = st.Err
				if err == nil {
					if st.Warn != "" {
						fmt.Fprintf(stdout, "warn  eval judge %s at %s: %s\n", st.Model, st.Endpoint, st.Warn)
					}
					fmt.Fprintf(stdout, "ok    eval judge %s at %s (%s)\n", st.Model, st.Endpoint, st.Note)
				}
			}
		}
		if err != nil {
			failed = true
			fmt.Fprintf(stdout, "FAIL  eval judge %s at %s: %v\n", j.Model, llm.EndpointName(j.BaseURL), advice(err, "eval.judge.api_key", j.APIKey == ""))
		}
	}
	if *probe && !failed {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		if err := probeBots(pctx, cfg, a.model, path, *write, stdout); err != nil {
			fmt.Fprintf(stdout, "FAIL  %v\n", err)
			failed = true
		}
	}
	if !checkActions(ctx, cfg, *probe, stdout) {
		failed = true
	}
	if err := a.store.Ping(ctx); err != nil {
		failed = true
		fmt.Fprintf(stdout, "FAIL  store %s: %v: is Redis running there, and is the password right?\n", redact(cfg.Store.URL), err)
	} else {
		fmt.Fprintf(stdout, "ok    store %s\n", redact(cfg.Store.URL))
	}
	if failed {
		return errSilent
	}
	return nil
}

// checkActions lists each action (its method, URL and where its headers
// come from; the file's validation checked the rest) and, with probe,
// calls each GET action that has example arguments.
func checkActions(ctx context.Context, cfg *config.Config, probe bool, stdout io.Writer) bool {
	if len(cfg.Actions) == 0 {
		return true
	}
	runner, err := action.New(cfg.Actions, media.FetchOptions{AllowedHosts: cfg.Media.AllowedHosts})
	if err != nil {
		fmt.Fprintf(stdout, "FAIL  %v\n", err)
		return false
	}
	ok := true
	for _, a := range cfg.Actions {
		var from []string
		for _, h := range slices.Sorted(maps.Keys(a.Headers)) {
			from = append(from, h+" from "+a.HeadersFrom[h])
		}
		kind := "reads"
		if a.Confirm != "" {
			kind = "changes data: runs on the user's Yes"
		}
		fmt.Fprintf(stdout, "ok    action %s: %s %s (%s; %d fields to the model", a.Name, a.Method, a.URL, kind, len(a.ResponseFields))
		if len(from) > 0 {
			fmt.Fprintf(stdout, "; headers %s", strings.Join(from, ", "))
		}
		fmt.Fprintln(stdout, ")")
		if !probe || a.Method != config.MethodGet || len(a.Example) == 0 {
			continue
		}
		out := runner.Do(ctx, a.Name, a.Example)
		if out.Kind != action.KindOK {
			ok = false
			fmt.Fprintf(stdout, "FAIL  action %s with %v: %s (%s)\n", a.Name, a.Example, out.Err, out.Kind)
			continue
		}
		fmt.Fprintf(stdout, "ok    action %s with %v: HTTP %d in %s; the model would see %s\n", a.Name, a.Example, out.Status, out.Took.Round(time.Millisecond), out.ToolContent())
	}
	return ok
}

// checkKnowledge reports each knowledge base's index (passages, model,
// age, floor) and reaches its embeddings endpoint with one short text;
// false when one fails.
func checkKnowledge(ctx context.Context, cfg *config.Config, stdout io.Writer) bool {
	ok := true
	for i := range cfg.Knowledge {
		k := resolved(cfg, &cfg.Knowledge[i])
		b, err := kb.Load(&k, k.Index, kbHTTP)
		if err != nil {
			ok = false
			fmt.Fprintf(stdout, "FAIL  %v\n", err)
			continue
		}
		m := b.Index.Manifest
		vectors := "keyword search only"
		if e := m.Embedding; e != nil {
			vectors = fmt.Sprintf("%s, %d dimensions", e.Model, e.Dimensions)
		}
		floor := "floor: auto rule (kb eval --calibrate sets one)"
		if f, ok := b.Floor(); ok {
			floor = fmt.Sprintf("floor %.3f", f)
		}
		fmt.Fprintf(stdout, "ok    knowledge %s: %s: %d passages, %s, built %s ago, %s\n", k.Name, k.Index, m.Chunks, vectors,
			time.Since(m.BuiltAt).Round(time.Minute), floor)
		if e := b.Embedder(); e != nil {
			if _, err := e.Embed(ctx, []string{"kommbridge check"}); err != nil {
				ok = false
				fmt.Fprintf(stdout, "FAIL  knowledge %s embeddings %s at %s: %v\n", k.Name, k.Embeddings.Model, llm.EndpointName(k.Embeddings.BaseURL),
					advice(err, fmt.Sprintf("knowledge[%d].embeddings.api_key", i), k.Embeddings.APIKey == ""))
			} else {
				fmt.Fprintf(stdout, "ok    knowledge %s embeddings %s at %s\n", k.Name, k.Embeddings.Model, llm.EndpointName(k.Embeddings.BaseURL))
			}
		}
		b.Index.Close()
	}
	return ok
}

// advice turns a failed endpoint check into the fix an operator needs.
func advice(err error, keyPath string, noKey bool) string {
	var e *llm.Error
	if !errors.As(err, &e) {
		return err.Error() + ": check the model name"
	}
	switch {
	case (e.Status == 401 || e.Status == 403) && noKey:
		return fmt.Sprintf("HTTP %d: no API key is set for this endpoint: set %s", e.Status, keyPath)
	case e.Status == 401 || e.Status == 403:
		return fmt.Sprintf("HTTP %d: the API key is wrong or lacks access: check %s", e.Status, keyPath)
	case e.Status == 404:
		return "HTTP 404: nothing OpenAI-compatible at this base URL, or no such model/deployment: check llm.base_url (it usually ends in /v1) and the model name (" + e.Detail() + ")"
	case errors.Is(e, llm.ErrTimeout):
		return "no answer in time: is the endpoint up, and reachable from here?"
	case e.Status == 0 && errors.Is(e, llm.ErrUnavailable):
		return fmt.Sprintf("cannot connect (%v): check llm.base_url and the network", e.Err)
	}
	return e.Error()
}
