package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kommbridge/kommbridge/llm/llmtest"
	"github.com/kommbridge/kommbridge/store/redis/redistest"
)

// On SIGTERM (here: ctx cancelled) serve stops accepting but lets the
// webhook in flight finish, then returns.
func TestShutdownDrainsInFlight(t *testing.T) {
	fake := llmtest.New(t)
	arrived, release := make(chan struct{}), make(chan struct{})
	fake.Default(func(llmtest.Request) llmtest.Reply {
		close(arrived)
		<-release
		return llmtest.Reply{Content: llmtest.Contract("Finished after shutdown began.", 0.9)}
	})
	path := writeConfig(t, "log: {level: info}\nbots:\n  - id: \"*\"\n")
	p := startProcess(t, path, env(map[string]string{"OPENAI_BASE_URL": fake.URL(), "KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	answer := make(chan string)
	go func() { answer <- post(t, p.base, `{"botId":"b","key":"k","groupId":1,"message":"hi"}`) }()
	<-arrived
	p.cancel()
	p.stderr.waitFor(t, "shutting down", 0)
	close(release)
	if got := <-answer; got != `[{"message":"Finished after shutdown began."}]` {
		t.Errorf("in-flight webhook got %s", got)
	}
	if err := <-p.errc; err != nil {
		t.Errorf("run: %v", err)
	}
}

// kill -9 of a replica loses nothing it had answered: another process on
// the same Redis sees the whole history.
func TestKill9KeepsHistory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "kommbridge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	r := redistest.Start(t)
	fake := llmtest.New(t)
	fake.Default(func(req llmtest.Request) llmtest.Reply {
		last := req.Chat.Messages[len(req.Chat.Messages)-1].Content
		return llmtest.Reply{Content: llmtest.Contract("re: "+last, 0.9)}
	})
	path := writeConfig(t, fmt.Sprintf("store: {url: %q}\nlog: {level: error}\nbots:\n  - id: \"*\"\n", r.URL))
	start := func() (*exec.Cmd, string) {
		cmd := exec.Command(bin, "serve", "--config", path)
		cmd.Env = append(os.Environ(), "OPENAI_BASE_URL="+fake.URL(), "KOMMBRIDGE_ADDR=127.0.0.1:0", "OPENAI_API_KEY=k", "KOMMBRIDGE_WEBHOOK_TOKEN="+testToken)
		stdout := &lineWriter{lines: make(chan string, 10)}
		cmd.Stdout = stdout
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, "http://" + strings.TrimPrefix(<-stdout.lines, "kommbridge listening on ")
	}
	first, base := start()
	if got := post(t, base, `{"botId":"b","key":"1","groupId":5,"message":"remember me"}`); got != `[{"message":"re: remember me"}]` {
		t.Fatalf("first answer %s", got)
	}
	first.Process.Kill() // SIGKILL: no shutdown, no flush
	first.Wait()

	_, base = start()
	dup := post(t, base, `{"botId":"b","key":"1","groupId":5,"message":"remember me"}`)
	if dup != `[{"message":"re: remember me"}]` || fake.Calls() != 1 {
		t.Errorf("the dedupe record did not survive: %s, model calls %d", dup, fake.Calls())
	}
	post(t, base, `{"botId":"b","key":"2","groupId":5,"message":"still there?"}`)
	var hist []string
	for _, m := range fake.Last(t).Chat.Messages[1:] {
		hist = append(hist, m.Content)
	}
	if strings.Join(hist, "|") != "remember me|re: remember me|still there?" {
		t.Errorf("history after kill -9: %q", hist)
	}
}
