package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kommbridge/kommbridge/config"
)

// version and commit are set at build time with -ldflags "-X
// main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)"; without
// them, Go's own build information (a module version, the VCS revision
// when the build stamped it) is used.
var version, commit = "", ""

// errSilent is a failure already reported to the user.
var errSilent = errors.New("failed")

// errModelFailed is try's exit for an answer the model failed to give
// (exit code 2: the configuration was fine, the model was not).
var errModelFailed = errors.New("model failed")

const usage = `kommbridge puts an OpenAI-compatible model behind a Kommunicate bot.

Usage:
  kommbridge [serve] [--config FILE]   run the webhook server (default)
  kommbridge check [--config FILE] [--offline]
                                       validate the configuration, then reach each endpoint and the
                                       store (not with --offline); exit 1 on any problem
  kommbridge try [--config FILE] [--bot ID] [--json] [MESSAGE]
                                       answer MESSAGE as the bot would, or chat interactively;
                                       exit 1 on a configuration problem, 2 if the model failed
  kommbridge eval [--config FILE] [--bot ID] [--repeat N] [--concurrency C] [--min-pass R]
                  [--against FILE] [--json F] [--junit F] [--html F] SUITE...
                                       run conversation suites (files or directories, default
                                       evals/) through the bot's pipeline and report them; exit 1
                                       when a case is below --min-pass, 2 if they cannot run
  kommbridge eval init --from TRANSCRIPT [--out FILE] [--bot ID]
                                       write a starter suite from try transcripts or a JSON Lines
                                       export of conversations
  kommbridge kb build|eval|gaps [--config FILE] [--base NAME] ...
                                       build a help center's index, measure its retrieval on
                                       labelled questions, list the questions it did not answer
                                       (kommbridge kb help)
  kommbridge actions import SPEC --operation ID
                                       print an action block for an OpenAPI 3 operation
  kommbridge report [--config FILE] [--since 7d] [--json F] [--csv F] [--log FILE]
                                       conversations by outcome: the resolution rate, handoffs by
                                       category, busiest hours, top unanswered questions
  kommbridge health [--config FILE] [--url URL]
                                       exit 0 if the server answers /healthz (for container health
                                       checks); the URL defaults to the configured address
  kommbridge version                   print the version, commit and Go version
  kommbridge help [COMMAND]            this text, or a command's flags (also -h, --help)

FILE defaults to ./config.yaml.
`

// run is the whole program; main only adds the process around it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	if len(args) > 0 && cmd == "serve" {
		switch args[0] {
		case "-h", "-help", "--help":
			cmd, args = "help", nil
		case "-version", "--version":
			cmd = "version"
		}
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "check":
		return check(ctx, args, getenv, stdout, stderr)
	case "try":
		return try(ctx, args, getenv, stdin, stdout, stderr)
	case "health":
		return health(ctx, args, getenv, stdout, stderr)
	case "eval":
		return evalCmd(ctx, args, getenv, stdout, stderr)
	case "kb":
		return kbCmd(ctx, args, getenv, stdout, stderr)
	case "actions":
		return actionsCmd(ctx, args, stdout, stderr)
	case "report":
		return report(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, versionLine())
		return nil
	case "help":
		if len(args) > 0 && args[0] != "help" && args[0] != "version" {
			return run(ctx, []string{args[0], "--help"}, getenv, stdin, stdout, stderr)
		}
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "unknown command %q\n\n%s", cmd, usage)
	return errSilent
}

// build is what the binary knows of its making.
type build struct {
	Version, Commit, Go string
	Modified            bool
}

func buildInfo() build {
	b := build{Version: version, Commit: commit, Go: runtime.Version()}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if b.Version == "" {
		b.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if commit == "" {
				b.Commit = s.Value
			}
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

func buildVersion() string { return buildInfo().Version }

// versionLine is what `kommbridge version` prints.
func versionLine() string {
	b := buildInfo()
	commit := b.Commit
	if b.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("kommbridge %s, commit %s, %s", b.Version, commit, b.Go)
}

// parseFlags parses a command's flags. --help prints the command's flags
// to stdout and returns nil words and nil error (exit 0). With
// interspersed, flags may follow words (try "hi" --json); otherwise a word
// is an error.
func parseFlags(fs *flag.FlagSet, args []string, interspersed bool, stdout, stderr io.Writer) ([]string, error) {
	fs.SetOutput(stderr)
	usage := func(w io.Writer) {
		fs.SetOutput(w)
		fmt.Fprintf(w, "Usage of kommbridge %s:\n", fs.Name())
		fs.PrintDefaults()
	}
	fs.Usage = func() {} // printed below, where it belongs
	words := []string{}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage(stdout)
				return nil, nil
			}
			usage(stderr)
			return nil, errSilent
		}
		args = fs.Args()
		if len(args) == 0 {
			return words, nil
		}
		if !interspersed {
			fmt.Fprintf(stderr, "unexpected argument %q\n", args[0])
			return nil, errSilent
		}
		words, args = append(words, args[0]), args[1:]
	}
}

// configFlag parses --config from args; path "" with a nil error means
// help was asked for and printed.
func configFlag(name string, args []string, stdout, stderr io.Writer) (string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "config.yaml", "configuration file")
	words, err := parseFlags(fs, args, false, stdout, stderr)
	if err != nil || words == nil {
		return "", err
	}
	return *path, nil
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
	level, err := zapcore.ParseLevel(string(c.Level))
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

// health asks a running server's /healthz; it is the container's health
// check, since the image has no shell or curl.
func health(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	u := fs.String("url", "", "the health URL (default: /healthz at server.addr, or KOMMBRIDGE_ADDR)")
	path := fs.String("config", "config.yaml", "configuration file, for server.addr")
	words, err := parseFlags(fs, args, false, stdout, stderr)
	if err != nil || words == nil {
		return err
	}
	if *u == "" {
		*u = "http://" + localAddr(*path, getenv) + "/healthz"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("health: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s answered %d", *u, resp.StatusCode)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// localAddr is where a server started with the configuration at path
// listens, as seen from this host: KOMMBRIDGE_ADDR, else server.addr (the
// file's, when it loads), with an empty or wildcard host read as loopback.
func localAddr(path string, getenv func(string) string) string {
	addr := config.Default().Server.Addr
	if cfg, err := config.Load(path, getenv); err == nil {
		addr = cfg.Server.Addr
	} else if v := getenv("KOMMBRIDGE_ADDR"); v != "" {
		addr = v
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
