package main

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kommbridge/kommbridge/config"
)

// A reload names, by key, each change it cannot apply, compared with what
// runs: a change reverted since the start is no change.
func TestRestartKeys(t *testing.T) {
	running := config.Default()
	next := config.Default()
	next.Server.ReplyBudget = config.Duration(20 * time.Second) // reloadable
	next.Limits.BusyMessage = "hold on"                         // reloadable
	next.LLM.Model = "gpt-4o"
	next.LLM.Breaker.Failures = 9
	next.Store.URL = "redis://r:6379/0"
	next.Media.AllowedHosts = []string{"files.internal"}
	next.Bots = []config.Bot{{ID: "new"}} // bots always reload
	want := []string{"llm.model", "llm.breaker.failures", "store.url", "media.allowed_hosts"}
	if diff := cmp.Diff(want, restartKeys(&running, &next)); diff != "" {
		t.Errorf("restart keys (-want +got):\n%s", diff)
	}
	reverted := config.Default()
	if got := restartKeys(&running, &reverted); len(got) != 0 {
		t.Errorf("after a revert: %v", got)
	}
}
