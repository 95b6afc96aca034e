// Command kommbridge puts an OpenAI-compatible model behind a Kommunicate
// bot. See README.md.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		if err != errSilent && err != errModelFailed && err != errEvalFailed && err != errCannotRun {
			fmt.Fprintln(os.Stderr, "kommbridge:", err)
		}
		stop()
		if err == errModelFailed || err == errCannotRun {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
