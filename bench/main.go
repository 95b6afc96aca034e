// Command bench measures what kommbridge adds to a model call. It starts a
// fake OpenAI-compatible upstream (fixed delay, fixed reply in the
// json_schema contract) and the real kommbridge binary with a generated
// config (memory store, limits off), then drives the same traffic twice on
// loopback: straight at the upstream (the baseline) and as Kommunicate
// webhooks through kommbridge. Every webhook has a unique key and cycles
// through many conversations, so dedupe and history do real work.
//
//	go run ./bench --delay 0ms --conns 16 --duration 10s
//	go run ./bench --delay 2s --inflight 10000
//
// See docs/performance.md.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type options struct {
	delay         time.Duration
	conns         int
	inflight      int
	duration      time.Duration
	warmup        time.Duration
	history       int
	conversations int
	attachments   bool
	jsonOut       string
	plotOut       string
	upstreamOnly  bool
	cpuProfile    string
	env           []string
	tls           bool
	tlsCert       string
	tlsKey        string
	listen        string
	reps          int
	floorMode     bool
	floorPprof    string
	upstreamURL   string
	sampleFile    string
}

func main() {
	var o options
	flag.DurationVar(&o.delay, "delay", 0, "the fake upstream's delay per request")
	flag.IntVar(&o.conns, "conns", 1, "concurrent connections (closed loop)")
	flag.IntVar(&o.inflight, "inflight", 0, "instead of a closed loop: send this many webhooks at once, once each")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to measure each side")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before measuring each side")
	flag.IntVar(&o.history, "history", 0, "fill each conversation's history to this many turns (store.history_turns)")
	flag.IntVar(&o.conversations, "conversations", 5000, "conversations the webhooks cycle through")
	flag.BoolVar(&o.attachments, "attachments", false, "every webhook carries an image attachment")
	flag.StringVar(&o.jsonOut, "json", "", "also write the results to this JSON file")
	flag.StringVar(&o.plotOut, "plot", "", "write an SVG of the latency percentiles, direct vs through")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of kommbridge, taken while measuring, to this file (and the floor's to FILE.floor)")
	flag.BoolVar(&o.upstreamOnly, "upstream", false, "internal: run only the fake upstream")
	flag.StringVar(&o.listen, "listen", "127.0.0.1:0", "internal: the fake upstream's address")
	flag.IntVar(&o.reps, "reps", 1, "repetitions of the three sides, interleaved; the report gives each figure's median")
	flag.BoolVar(&o.floorMode, "floor", false, "internal: run only the floor bridge")
	flag.StringVar(&o.floorPprof, "floor-pprof", "", "internal: where the floor serves its runtime profiles")
	flag.StringVar(&o.upstreamURL, "upstream-url", "", "internal: the floor's upstream")
	flag.StringVar(&o.sampleFile, "sample", "", "internal: the chat request whose system prompt and format the floor sends")
	flag.BoolVar(&o.tls, "tls", false, "the upstream speaks HTTPS (and so HTTP/2), as real providers do")
	flag.StringVar(&o.tlsCert, "tls-cert", "", "internal: the upstream's certificate")
	flag.StringVar(&o.tlsKey, "tls-key", "", "internal: the upstream's key")
	flag.Func("env", "KEY=VALUE for kommbridge's environment (GOGC=200, GOMAXPROCS=1); repeatable", func(v string) error {
		o.env = append(o.env, v)
		return nil
	})
	flag.Parse()
	if o.inflight > 0 && o.reps > 1 {
		// Peak RSS is each process's high-water mark since it started:
		// repetitions in the same processes would add up.
		fmt.Fprintln(os.Stderr, "bench: --inflight measures peak memory, which repetitions in the same processes would add up; run it again instead of --reps")
		os.Exit(2)
	}
	if o.floorMode {
		if err := serveFloor(o.listen, o.upstreamURL, o.sampleFile, o.floorPprof); err != nil {
			fmt.Fprintln(os.Stderr, "floor:", err)
			os.Exit(1)
		}
		return
	}
	if o.upstreamOnly {
		if err := serveUpstream(o.listen, o.delay, o.tlsCert, o.tlsKey); err != nil {
			fmt.Fprintln(os.Stderr, "upstream:", err)
			os.Exit(1)
		}
		return
	}
	if err := benchmark(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func benchmark(o options) error {
	raiseFileLimit(o.inflight*2 + 4096)
	dir, err := os.MkdirTemp("", "kommbridge-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "kommbridge")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/kommbridge").CombinedOutput(); err != nil {
		return fmt.Errorf("building kommbridge (run bench from the repository root): %v\n%s", err, out)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	upArgs := []string{"--upstream", "--delay", o.delay.String()}
	scheme := "http"
	var kbEnv []string
	if o.tls {
		cert, key, err := selfSigned(dir)
		if err != nil {
			return err
		}
		upArgs = append(upArgs, "--tls-cert", cert, "--tls-key", key)
		scheme = "https"
		kbEnv = append(kbEnv, "SSL_CERT_FILE="+cert) // kommbridge trusts it as a system CA
		trust = cert
	}
	up, err := startProcess(ctx, self, nil, upArgs...)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	defer up.stop()
	upstreamURL := scheme + "://" + up.addr + "/v1"

	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(benchConfig(o)), 0o600); err != nil {
		return err
	}
	kb, err := startProcess(ctx, bin, append(append([]string{"OPENAI_BASE_URL=" + upstreamURL, "OPENAI_API_KEY=bench", "KOMMBRIDGE_WEBHOOK_TOKEN=" + benchToken, "KOMMBRIDGE_ADDR=127.0.0.1:0"}, kbEnv...), o.env...),
		"serve", "--config", cfgPath)
	if err != nil {
		return fmt.Errorf("kommbridge: %w", err)
	}
	defer kb.stop()

	env := machine()
	fmt.Printf("kommbridge bench: %s\n", env)
	fmt.Printf("scenario: %s\n\n", o.scenario())

	through := &webhookTraffic{url: "http://" + kb.addr + "/webhook", o: o}
	// One webhook first, so that the upstream holds a request of
	// kommbridge's: the direct side sends it as is, and the floor sends
	// the same system prompt and response format.
	warm := through.request(-1)
	if !do(client(1), warm, through) {
		return fmt.Errorf("kommbridge did not answer the first webhook")
	}
	sample := up.sample()
	sampleFile := filepath.Join(dir, "sample.json")
	if err := os.WriteFile(sampleFile, sample, 0o600); err != nil {
		return err
	}
	floorArgs := []string{"--floor", "--upstream-url", upstreamURL, "--sample", sampleFile}
	if o.cpuProfile != "" {
		floorArgs = append(floorArgs, "--floor-pprof", floorPprof)
	}
	fl, err := startProcess(ctx, self, kbEnv, floorArgs...)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	defer fl.stop()
	floorSide := &webhookTraffic{url: "http://" + fl.addr + "/webhook", o: o}
	direct := &directTraffic{url: upstreamURL + "/chat/completions", body: sample}
	measure := func(t traffic, p *process) result {
		if o.inflight > 0 {
			switch p {
			case kb:
				return inflight(t, o.inflight, p, "http://"+kb.addr+"/metrics", true)
			case fl:
				return inflight(t, o.inflight, p, "http://"+fl.addr+"/stats", false)
			}
			return inflight(t, o.inflight, p, "", false)
		}
		var prof profiling
		switch {
		case o.cpuProfile == "":
		case p == kb:
			prof = profiling{kbPprof, o.cpuProfile}
		case p == fl:
			prof = profiling{floorPprof, o.cpuProfile + ".floor"}
		}
		return closedLoop(t, o, p, prof)
	}
	var throughs, floors, directs []result
	for i := range max(o.reps, 1) {
		if o.reps > 1 {
			fmt.Fprintf(os.Stderr, "repetition %d of %d\n", i+1, o.reps)
		}
		throughs = append(throughs, measure(through, kb))
		floors = append(floors, measure(floorSide, fl))
		directs = append(directs, measure(direct, nil))
	}
	rep := report{Machine: env, Scenario: o.scenario(), Reps: max(o.reps, 1), Direct: median(directs), Floor: median(floors), Through: median(throughs)}
	rep.ratios()
	rep.print(os.Stdout)
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if o.plotOut != "" {
		if err := os.WriteFile(o.plotOut, []byte(rep.svg()), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (o options) scenario() string {
	var parts []string
	parts = append(parts, "delay "+o.delay.String())
	if o.inflight > 0 {
		parts = append(parts, fmt.Sprintf("%d in flight", o.inflight))
	} else {
		parts = append(parts, fmt.Sprintf("%d conns, %s", o.conns, o.duration))
	}
	if o.history > 0 {
		parts = append(parts, fmt.Sprintf("history %d", o.history))
	}
	if o.attachments {
		parts = append(parts, "image attachments")
	}
	if o.tls {
		parts = append(parts, "HTTPS upstream")
	}
	if o.reps > 1 {
		parts = append(parts, fmt.Sprintf("medians of %d interleaved repetitions", o.reps))
	}
	return strings.Join(parts, ", ")
}

// benchConfig is kommbridge's configuration for the run: memory store,
// limits off, content logging off, and room for every call in flight.
func benchConfig(o options) string {
	turns := 20
	if o.history > 0 {
		turns = o.history
	}
	pprof := ""
	if o.cpuProfile != "" {
		pprof = kbPprof
	}
	conc := 1024
	if o.inflight > conc {
		conc = o.inflight
	}
	return fmt.Sprintf(`server:
  reply_budget: 25s
  pprof_addr: "%s"
llm:
  model: gpt-4o-mini
  max_retries: 0
  max_concurrency: %d
store:
  url: memory://
  history_turns: %d
log:
  level: warn
bots:
  - id: "*"
    system_prompt: "You are the support assistant of ACME, a shop for outdoor gear. Answer in {{.Language}}, briefly and kindly."
    handoff: {phrases: ["talk to a human"]}
`, pprof, conc, turns)
}

func raiseFileLimit(n int) {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil || l.Cur >= uint64(n) {
		return
	}
	want := syscall.Rlimit{Cur: uint64(n), Max: max(l.Max, uint64(n))}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		fmt.Fprintf(os.Stderr, "bench: cannot raise the open-file limit to %d (%v); large --inflight runs may fail\n", n, err)
	}
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				model = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, %s", model, runtime.NumCPU(), runtime.Version())
}
