package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// lineWriter keeps every line written to it, and hands the first ones to
// a channel (while it has room) for whoever waits for them.
type lineWriter struct {
	mu    sync.Mutex
	cond  *sync.Cond
	buf   bytes.Buffer
	all   []string
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cond == nil {
		w.cond = sync.NewCond(&w.mu)
	}
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			return len(p), nil
		}
		line = strings.TrimSpace(line)
		w.all = append(w.all, line)
		w.cond.Broadcast()
		select {
		case w.lines <- line:
		default:
		}
	}
}

// waitFor blocks until a line at index from or later contains text, and
// returns the index after it; it fails t after 20 seconds without one.
func (w *lineWriter) waitFor(t *testing.T, text string, from int) int {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cond == nil {
		w.cond = sync.NewCond(&w.mu)
	}
	wake := time.AfterFunc(20*time.Second, func() { w.mu.Lock(); w.cond.Broadcast(); w.mu.Unlock() })
	defer wake.Stop()
	for {
		for i := from; i < len(w.all); i++ {
			if strings.Contains(w.all[i], text) {
				return i + 1
			}
		}
		from = len(w.all)
		if time.Now().After(deadline) {
			t.Fatalf("no line with %q in 20s", text)
		}
		w.cond.Wait()
	}
}

// text is everything written so far.
func (w *lineWriter) text() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.all, "\n") + w.buf.String()
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func env(m map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := m[k]; ok {
			return v
		}
		if k == "KOMMBRIDGE_WEBHOOK_TOKEN" {
			return testToken
		}
		return ""
	}
}

// testToken is the webhook token every test server runs with, and every
// test webhook carries.
const testToken = "test-token"

// webhook is a POST to base's webhook with the test token.
func webhook(ctx context.Context, base string, body io.Reader) *http.Request {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/webhook", body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Kommbridge-Token", testToken)
	return req
}

// The whole program, as an operator runs it: config file, environment,
// a real listener on port 0, a webhook, then a clean shutdown.
func TestRunServesWebhooks(t *testing.T) {
	fake := llmtest.New(t)
	fake.RequireKey("sk-from-env")
	fake.Enqueue(llmtest.Reply{Content: llmtest.Contract("Your order shipped on Monday.", 0.9)})
	path := writeConfig(t, `
server:
  auth: {header: X-Token, value: "${HOOK_TOKEN}"}
llm:
  model: gpt-4o-mini
log: {level: warn}
bots:
  - id: "*"
    system_prompt_file: prompt.md
`)
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), "prompt.md"), []byte("You help {{.Context.name}}."), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := env(map[string]string{
		"HOOK_TOKEN":      "t0ken",
		"OPENAI_API_KEY":  "sk-from-env",
		"OPENAI_BASE_URL": fake.URL(),
		"KOMMBRIDGE_ADDR": "127.0.0.1:0",
	})
	base, stop := startRun(t, path, getenv)
	if resp, err := http.Get(base + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}

	req := webhook(context.Background(), base, strings.NewReader(`{"botId":"b","key":"k1","groupId":3,"message":"Where is my order?","metadata":{"KM_CHAT_CONTEXT":{"name":"Asha"}}}`))
	req.Header.Set("X-Token", "t0ken")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `[{"message":"Your order shipped on Monday."}]` {
		t.Errorf("webhook: %d %s", resp.StatusCode, body)
	}
	if sys := fake.Last(t).Chat.Messages[0].Content; !strings.HasPrefix(sys, "You help Asha.") {
		t.Errorf("system prompt from file: %q", sys)
	}

	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// startRun runs kommbridge serve until stop is called; it returns the
// base URL it listens on.
func startRun(t *testing.T, path string, getenv func(string) string) (string, func() error) {
	t.Helper()
	p := startProcess(t, path, getenv)
	return p.base, func() error { p.cancel(); return <-p.errc }
}

type process struct {
	base   string
	cancel context.CancelFunc
	errc   chan error
	stderr *lineWriter
}

func startProcess(t *testing.T, path string, getenv func(string) string) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stdout := &lineWriter{lines: make(chan string, 10)}
	p := &process{cancel: cancel, errc: make(chan error, 1), stderr: &lineWriter{lines: make(chan string)}}
	go func() { p.errc <- run(ctx, []string{"serve", "--config", path}, getenv, nil, stdout, p.stderr) }()
	select {
	case line := <-stdout.lines:
		p.base = "http://" + strings.TrimPrefix(line, "kommbridge listening on ")
	case err := <-p.errc:
		t.Fatalf("run ended early: %v\n%s", err, p.stderr.text())
	}
	return p
}

func TestHealthCommand(t *testing.T) {
	path := writeConfig(t, "log: {level: error}\n")
	base, stop := startRun(t, path, env(map[string]string{"KOMMBRIDGE_ADDR": "127.0.0.1:0"}))
	defer stop()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"health", "--url", base + "/healthz"}, env(nil), nil, &out, io.Discard); err != nil || out.String() != "ok\n" {
		t.Errorf("healthy server: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"health", "--url", base + "/nope"}, env(nil), nil, io.Discard, io.Discard); err == nil {
		t.Error("a 404 counted as healthy")
	}
	// Without --url, the configured address.
	addr := strings.TrimPrefix(base, "http://")
	_, port, _ := net.SplitHostPort(addr)
	cfg := writeConfig(t, fmt.Sprintf("server: {addr: \":%s\"}\n", port))
	if err := run(context.Background(), []string{"health", "--config", cfg}, env(nil), nil, io.Discard, io.Discard); err != nil {
		t.Errorf("health at server.addr :%s: %v", port, err)
	}
	if err := run(context.Background(), []string{"health", "--config", "/nonexistent.yaml"}, env(map[string]string{"KOMMBRIDGE_ADDR": addr}), nil, io.Discard, io.Discard); err != nil {
		t.Errorf("health at KOMMBRIDGE_ADDR %s: %v", addr, err)
	}
}
