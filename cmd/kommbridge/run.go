package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kommbridge/kommbridge/config"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// errSilent is a failure already reported to the user.
var errSilent = errors.New("failed")

const usage = `kommbridge puts an OpenAI-compatible model behind a Kommunicate bot.

Usage:
  kommbridge [serve] [--config FILE]   run the webhook server (default)
  kommbridge check [--config FILE] [--offline]
                                       validate the configuration, then reach each endpoint and the
                                       store (not with --offline); exit 1 on any problem
  kommbridge try [--config FILE] [--bot ID] [--json] [MESSAGE]
                                       answer MESSAGE as the bot would, or chat interactively
  kommbridge health [--url URL]        exit 0 if the server answers /healthz (for container health checks)
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
		return check(ctx, args, getenv, stdout, stderr)
	case "try":
		return try(ctx, args, getenv, stdin, stdout, stderr)
	case "health":
		return health(ctx, args, stdout, stderr)
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

// health asks a running server's /healthz; it is the container's health
// check, since the image has no shell or curl.
func health(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	fs.SetOutput(stderr)
	u := fs.String("url", "http://127.0.0.1:8080/healthz", "the health URL")
	if err := fs.Parse(args); err != nil {
		return errSilent
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
