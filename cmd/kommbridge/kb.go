package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/kb"
	"github.com/kommbridge/kommbridge/media"
	redisstore "github.com/kommbridge/kommbridge/store/redis"
)

const kbUsage = `kommbridge kb builds and measures the help centers bots answer from.

Usage:
  kommbridge kb build [--config FILE] [--base NAME]
                      read each knowledge base's sources and write its index file;
                      only passages whose words changed are embedded again
  kommbridge kb eval  --set FILE [--config FILE] [--base NAME] [--calibrate] [--json F]
                      recall@5, MRR@10 and abstain rates on labelled questions, for
                      keyword, vector and hybrid search; --calibrate writes the floor
                      min_score: auto uses into the index
  kommbridge kb gaps  [--config FILE] [--base NAME] [--top N] [--log FILE]
                      the questions the help center did not answer, most asked first:
                      from the Redis store, or from serve's log (with log.content: true)
`

// kbCmd runs kommbridge kb SUBCOMMAND.
func kbCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, kbUsage)
		return nil
	}
	switch args[0] {
	case "build":
		return kbBuild(ctx, args[1:], getenv, stdout, stderr)
	case "eval":
		return kbEval(ctx, args[1:], getenv, stdout, stderr)
	case "gaps":
		return kbGaps(ctx, args[1:], getenv, stdout, stderr)
	}
	fmt.Fprintf(stderr, "unknown kb command %q\n\n%s", args[0], kbUsage)
	return errSilent
}

// kbConfig loads the configuration and picks the bases named (all when
// name is empty).
func kbConfig(path, name string, getenv func(string) string, stderr io.Writer) (*config.Config, []*config.KnowledgeBase, error) {
	cfg, err := config.Load(path, getenv, bridge.CheckTemplates)
	if err != nil {
		reportConfig(stderr, path, err)
		return nil, nil, errSilent
	}
	var bases []*config.KnowledgeBase
	var names []string
	for i := range cfg.Knowledge {
		k := &cfg.Knowledge[i]
		names = append(names, k.Name)
		if name == "" || k.Name == name {
			bases = append(bases, k)
		}
	}
	switch {
	case len(cfg.Knowledge) == 0:
		fmt.Fprintf(stderr, "%s has no knowledge bases: add one under knowledge: (see docs/knowledge.md)\n", path)
		return nil, nil, errSilent
	case len(bases) == 0:
		fmt.Fprintf(stderr, "no knowledge base %q in %s; it has %s\n", name, path, strings.Join(names, ", "))
		return nil, nil, errSilent
	}
	return cfg, bases, nil
}

// resolved is k with its paths resolved against config.yaml's directory.
func resolved(cfg *config.Config, k *config.KnowledgeBase) config.KnowledgeBase {
	r := *k
	r.Index = cfg.Resolve(k.Index)
	r.Sources = slices.Clone(k.Sources)
	for i := range r.Sources {
		r.Sources[i].Dir = cfg.Resolve(r.Sources[i].Dir)
	}
	return r
}

func kbBuild(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kb build", flag.ContinueOnError)
	path := fs.String("config", "config.yaml", "configuration file")
	base := fs.String("base", "", "build only this knowledge base (default: all)")
	if words, err := parseFlags(fs, args, false, stdout, stderr); err != nil || words == nil {
		return err
	}
	cfg, bases, err := kbConfig(*path, *base, getenv, stderr)
	if err != nil {
		return err
	}
	failed := false
	for _, k := range bases {
		r := resolved(cfg, k)
		start := time.Now()
		var progress io.Writer
		if isTerminal(stderr) {
			progress = stderr
		}
		sum, err := kb.Build(ctx, kb.BuildOptions{Base: r, Embedder: kb.NewEmbedder(&r, kbHTTP), Progress: progress,
			Fetch: media.FetchOptions{MaxBytes: cfg.Media.MaxBytes, AllowedHosts: cfg.Media.AllowedHosts, Timeout: cfg.Media.FetchTimeout.D()}})
		if err != nil {
			fmt.Fprintf(stderr, "kb %s: %v\n", k.Name, err)
			failed = true
			continue
		}
		size := ""
		if st, err := os.Stat(r.Index); err == nil {
			size = fmt.Sprintf(", %.1f MB", float64(st.Size())/(1<<20))
		}
		fmt.Fprintf(stdout, "kb %s: %d pages read, %d unchanged; %d passages", k.Name, sum.Pages, sum.Unchanged, sum.Chunks)
		if k.Embeddings != nil {
			fmt.Fprintf(stdout, ": %d embedded, %d reused", sum.Embedded, sum.Reused)
		}
		fmt.Fprintf(stdout, "; wrote %s%s in %s\n", r.Index, size, time.Since(start).Round(time.Millisecond))
		for _, s := range sum.Skipped {
			fmt.Fprintf(stdout, "  left out %s: %s\n", s.What, s.Why)
		}
	}
	if failed {
		return errSilent
	}
	return nil
}

func kbEval(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kb eval", flag.ContinueOnError)
	path := fs.String("config", "config.yaml", "configuration file")
	base := fs.String("base", "", "the knowledge base (default: the set's base, else the only one)")
	setPath := fs.String("set", "", "the labelled questions (YAML: base, questions: [{q, expect: URL, title or none}])")
	calibrate := fs.Bool("calibrate", false, "pick the floor that meets the targets and write it into the index")
	jsonOut := fs.String("json", "", "write the report as JSON to this file")
	if words, err := parseFlags(fs, args, false, stdout, stderr); err != nil || words == nil {
		return err
	}
	if *setPath == "" {
		fmt.Fprintln(stderr, "kb eval needs --set FILE: labelled questions (see docs/knowledge.md)")
		return errSilent
	}
	set, err := kb.LoadSet(*setPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errSilent
	}
	name := *base
	if name == "" {
		name = set.Base
	}
	cfg, bases, err := kbConfig(*path, name, getenv, stderr)
	if err != nil {
		return err
	}
	if len(bases) > 1 {
		fmt.Fprintln(stderr, "kb eval measures one knowledge base: name it with --base or base: in the set")
		return errSilent
	}
	k := resolved(cfg, bases[0])
	b, err := kb.Load(&k, k.Index, kbHTTP)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errSilent
	}
	defer b.Index.Close()
	r, err := kb.Evaluate(ctx, b, set, *calibrate)
	if err != nil {
		fmt.Fprintf(stderr, "kb eval: %v\n", err)
		return errSilent
	}
	fmt.Fprintf(stdout, "kb %s: %d questions, %d answerable, %d not in the help center; serve searches %s\n",
		k.Name, r.Answerable+r.Unanswerable, r.Answerable, r.Unanswerable, r.Serving)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODE\tRECALL@5\tMRR@10\tFLOOR\tABSTAIN\tFALSE ABSTAIN")
	for _, m := range r.Modes {
		floor := m.FloorFrom
		if m.FloorFrom != "auto rule" {
			floor = fmt.Sprintf("%.3f (%s)", m.Floor, m.FloorFrom)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t%.0f%%\t%.0f%%\n", m.Mode, m.Recall5, m.MRR10, floor, 100*m.Abstain, 100*m.FalseAbstain)
	}
	tw.Flush()
	if len(r.Misses) > 0 {
		fmt.Fprintf(stdout, "\nnot in the first 5 passages (%s):\n", r.Serving)
		for _, m := range r.Misses {
			fmt.Fprintf(stdout, "  %q\n    want %s; found %s\n", m.Q, m.Want, strings.Join(m.Got, "; "))
		}
	}
	if *calibrate {
		mr, _ := r.Mode(r.Serving)
		if err := kb.SetFloor(k.Index, mr.Floor, time.Now().UTC()); err != nil {
			fmt.Fprintf(stderr, "writing the floor into %s: %v\n", k.Index, err)
			return errSilent
		}
		fmt.Fprintf(stdout, "\nfloor %.3f written to %s: bots with min_score: auto use it after a reload (serve reloads the file when it changes)\n", mr.Floor, k.Index)
	}
	if *jsonOut != "" {
		data, _ := json.MarshalIndent(r, "", "  ")
		if err := os.WriteFile(*jsonOut, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// gapStore reads the unanswered questions a store recorded.
type gapStore interface {
	Gaps(ctx context.Context, base string, n int) ([]kommbridge.Gap, error)
	Close() error
}

func kbGaps(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kb gaps", flag.ContinueOnError)
	path := fs.String("config", "config.yaml", "configuration file")
	base := fs.String("base", "", "only this knowledge base (default: all)")
	top := fs.Int("top", 20, "how many questions to show per knowledge base")
	logPath := fs.String("log", "", `read serve's JSON log ("-" for standard input) instead of the store`)
	if words, err := parseFlags(fs, args, false, stdout, stderr); err != nil || words == nil {
		return err
	}
	cfg, bases, err := kbConfig(*path, *base, getenv, stderr)
	if err != nil {
		return err
	}
	var read func(base string) ([]kommbridge.Gap, error)
	switch {
	case *logPath != "":
		gaps, err := gapsFromLog(*logPath)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return errSilent
		}
		read = func(base string) ([]kommbridge.Gap, error) {
			out := gaps[base]
			slices.SortFunc(out, kommbridge.MostAsked)
			return out[:min(*top, len(out))], nil
		}
	case strings.HasPrefix(cfg.Store.URL, "redis"):
		rs, err := redisstore.New(cfg.Store.URL, redisstore.Options{})
		if err != nil {
			fmt.Fprintln(stderr, err)
			return errSilent
		}
		var st gapStore = rs
		defer st.Close()
		read = func(base string) ([]kommbridge.Gap, error) { return st.Gaps(ctx, base, *top) }
	default:
		fmt.Fprintln(stderr, "the memory store keeps unanswered questions inside the serving process: read them from its log with --log FILE (serve logs the question with log.content: true), or use a Redis store")
		return errSilent
	}
	for _, k := range bases {
		gaps, err := read(k.Name)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return errSilent
		}
		fmt.Fprintf(stdout, "kb %s: %d unanswered questions, most asked first\n", k.Name, len(gaps))
		for _, g := range gaps {
			last := ""
			if !g.Last.IsZero() {
				last = "  (last " + g.Last.UTC().Format("2006-01-02 15:04") + ")"
			}
			fmt.Fprintf(stdout, "%6d  %s%s\n", g.Count, g.Question, last)
		}
	}
	return nil
}

// gapsFromLog counts the questions of serve's webhook log lines whose
// help-center search found nothing ("kb":"not_found"); the question is
// the logged text, there only with log.content: true.
func gapsFromLog(path string) (map[string][]kommbridge.Gap, error) {
	counts := map[string]map[string]*kommbridge.Gap{}
	withoutText := 0
	err := readLog(path, func(raw []byte) {
		var line struct {
			KB   string  `json:"kb"`
			Base string  `json:"kb_base"`
			Text *string `json:"text"`
		}
		if json.Unmarshal(raw, &line) != nil || line.KB != "not_found" {
			return
		}
		if line.Text == nil {
			withoutText++
			return
		}
		q := bridge.GapText(*line.Text)
		if counts[line.Base] == nil {
			counts[line.Base] = map[string]*kommbridge.Gap{}
		}
		g := counts[line.Base][q]
		if g == nil {
			g = &kommbridge.Gap{Question: q}
			counts[line.Base][q] = g
		}
		g.Count++
	})
	if err != nil {
		return nil, err
	}
	if withoutText > 0 && len(counts) == 0 {
		return nil, errors.New(`the log has unanswered questions without their text: serve logs it only with log.content: true`)
	}
	out := map[string][]kommbridge.Gap{}
	for base, m := range counts {
		for _, g := range m {
			out[base] = append(out[base], *g)
		}
	}
	return out, nil
}

// readLog calls line with each line of serve's log at path ("-" for
// standard input).
func readLog(path string, line func([]byte)) error {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		line(sc.Bytes())
	}
	return sc.Err()
}
