package adapter_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge/adapter"
	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/llm/llmtest"
	"github.com/kommbridge/kommbridge/media"
	"github.com/kommbridge/kommbridge/store/memory"
)

var update = flag.Bool("update", false, "rewrite golden files")

const token = "s3cret-token"

// harness is kommbridge's full HTTP path on a test server, in front of the
// fake model.
type harness struct {
	t     *testing.T
	model *llmtest.Server
	url   string
	store *memory.Store
}

// baseConfig is the YAML every harness starts from; extra is appended
// (top-level keys replace nothing, so tests add sections it lacks).
const baseConfig = `
server:
  auth: {header: X-Kommbridge-Token, value: "s3cret-token"}
  reply_budget: %BUDGET%
  max_body_bytes: 4096
llm:
  base_url: %URL%
  api_key: test-key
  max_retries: 1
`

const defaultBots = `
bots:
  - id: "*"
    system_prompt: "You are ACME's assistant. Answer in {{.Language}}."
    welcome:
      text: "Hi{{with .Context.name}} {{.}}{{end}}! How can I help?"
      suggested_replies: ["Track my order", "Returns"]
    handoff:
      phrases: ["talk to a human", "real person"]
      teams: {billing: "2841"}
`

// newHarness serves the webhook with bots (YAML, defaultBots when empty)
// and a reply budget (5s when empty) against one fake model. Limits,
// fallbacks and the other wiring of a whole server are tested through
// `run` in cmd/kommbridge.
func newHarness(t *testing.T, bots string, budget string) *harness {
	t.Helper()
	return newLoggedHarness(t, bots, budget, zap.NewNop())
}

// newLoggedHarness is newHarness with the bridge and the server logging
// to log.
func newLoggedHarness(t *testing.T, bots string, budget string, log *zap.Logger) *harness {
	t.Helper()
	return newHarnessWith(t, bots, budget, log, false)
}

// newHarnessWith is newLoggedHarness, logging message text and keys when
// content is set (log.content).
func newHarnessWith(t *testing.T, bots string, budget string, log *zap.Logger, content bool) *harness {
	t.Helper()
	if bots == "" {
		bots = defaultBots
	}
	if budget == "" {
		budget = "5s"
	}
	model := llmtest.New(t)
	model.RequireKey("test-key")
	yml := strings.NewReplacer("%URL%", model.URL(), "%BUDGET%", budget).Replace(baseConfig) + bots
	cfg, err := config.Parse([]byte(yml), "test.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	st := memory.New(memory.Options{})
	client, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{llm.Endpoint{BaseURL: cfg.LLM.BaseURL, APIKey: cfg.LLM.APIKey, APIType: string(cfg.LLM.APIType), Model: cfg.LLM.Model}}, MaxRetries: cfg.LLM.MaxRetries}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	// example.com stands for Kommunicate's file host; it is listed so that
	// image URLs pass the address rules without DNS, which tests lack.
	files := media.New(media.Options{Fetch: media.FetchOptions{AllowedHosts: []string{"example.com"}}})
	b, err := bridge.New(cfg, bridge.Deps{Store: st, Model: client, Media: files, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := adapter.NewServer(b, adapter.Options{
		WebhookPath:  cfg.Server.WebhookPath,
		AuthHeader:   cfg.Server.Auth.Header,
		AuthValue:    cfg.Server.Auth.Value,
		MaxBodyBytes: cfg.Server.MaxBodyBytes,
		LogContent:   content,
	}, log)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return &harness{t: t, model: model, url: ts.URL, store: st}
}

type response struct {
	status int
	body   []byte
}

func (h *harness) do(method, path, body string, header map[string]string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, body: b}
}

// post sends a webhook with the right token and wants 200.
func (h *harness) post(body string) []adapter.Message {
	h.t.Helper()
	r := h.do(http.MethodPost, "/webhook", body, map[string]string{"X-Kommbridge-Token": token})
	if r.status != http.StatusOK {
		h.t.Fatalf("status %d, want 200; body %s", r.status, r.body)
	}
	var msgs []adapter.Message
	if err := json.Unmarshal(r.body, &msgs); err != nil {
		h.t.Fatalf("answer is not a JSON array of messages: %v: %s", err, r.body)
	}
	return msgs
}

// postRaw is post returning the exact bytes.
func (h *harness) postRaw(body string) []byte {
	h.t.Helper()
	r := h.do(http.MethodPost, "/webhook", body, map[string]string{"X-Kommbridge-Token": token})
	if r.status != http.StatusOK {
		h.t.Fatalf("status %d, want 200; body %s", r.status, r.body)
	}
	return r.body
}

func texts(msgs []adapter.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Message
	}
	return out
}

// golden compares got with testdata/name, rewriting it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, got, "", "  "); err == nil {
		got = append(pretty.Bytes(), '\n')
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, diff)
	}
}

func msg(text string) string {
	b, _ := json.Marshal(map[string]any{"botId": "support-bot", "key": "k-" + text, "from": "u-1", "message": text, "groupId": 1001})
	return string(b)
}
