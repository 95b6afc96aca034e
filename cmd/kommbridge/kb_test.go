package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// articlesCopy copies the fixture help center's articles to a directory
// of t's, which a test may change.
func articlesCopy(t *testing.T) string {
	t.Helper()
	from, err := filepath.Abs("../../kb/testdata/helpcenter/articles")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "articles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(from)
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(from, e.Name()))
		os.WriteFile(filepath.Join(dir, e.Name()), data, 0o644)
	}
	return dir
}

// helpConfig is a bot answering from the articles in dir, embedded by
// fake, with on_no_match and the rest of its knowledge settings as extra
// says.
func helpConfig(t *testing.T, fake *llmtest.Server, dir, extra string) string {
	t.Helper()
	return writeConfig(t, fmt.Sprintf(`
server: {addr: "127.0.0.1:0"}
llm: {base_url: %q, api_key: k, max_retries: 0}
log: {level: info}
knowledge:
  - name: help
    sources: [{dir: %q, url_prefix: "https://help.acme.example/"}]
    index: help.kbx
    embeddings: {base_url: %q, api_key: k, model: text-embedding-3-small, dimensions: 256, timeout: 500ms}
bots:
  - id: "*"
    system_prompt: "You are ACME's assistant."
    knowledge: {base: help%s}
`, fake.URL(), dir, fake.URL(), extra))
}

func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, env(nil), nil, &out, &errOut)
	return out.String() + errOut.String(), err
}

// kb build, kb eval --calibrate, check and kb gaps --log, as an operator
// runs them on the fixture help center.
func TestKBCommands(t *testing.T) {
	fake := llmtest.New(t)
	path := helpConfig(t, fake, articlesCopy(t), "")
	out, err := runCmd(t, "kb", "build", "--config", path)
	if err != nil || !strings.Contains(out, "kb help: 29 pages read, 0 unchanged; 29 passages: 29 embedded, 0 reused; wrote ") {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err = runCmd(t, "kb", "build", "--config", path)
	if err != nil || !strings.Contains(out, "0 pages read, 29 unchanged; 29 passages: 0 embedded, 29 reused") {
		t.Errorf("rebuild: %v\n%s", err, out)
	}
	out, err = runCmd(t, "kb", "eval", "--config", path, "--set", "../../kb/testdata/helpcenter/questions.yaml", "--calibrate")
	if err != nil || !strings.Contains(out, "81 questions, 68 answerable, 13 not in the help center; serve searches hybrid") ||
		!strings.Contains(out, "hybrid") || !strings.Contains(out, "written to") {
		t.Fatalf("eval: %v\n%s", err, out)
	}
	t.Log(out)
	out, err = runCmd(t, "check", "--config", path)
	if err != nil || !strings.Contains(out, "ok    knowledge help: ") || !strings.Contains(out, "29 passages, text-embedding-3-small, 256 dimensions") ||
		!strings.Contains(out, "floor 0.") || !strings.Contains(out, "ok    knowledge help embeddings text-embedding-3-small") {
		t.Errorf("check: %v\n%s", err, out)
	}
	fake.FailEmbeddings(http.StatusUnauthorized)
	if out, err := runCmd(t, "check", "--config", path); err == nil || !strings.Contains(out, "FAIL  knowledge help embeddings") || !strings.Contains(out, "knowledge[0].embeddings.api_key") {
		t.Errorf("check with the embeddings endpoint refusing the key: %v\n%s", err, out)
	}
	fake.FailEmbeddings(0)

	log := filepath.Join(t.TempDir(), "serve.log")
	lines := []string{
		`{"msg":"webhook","kb":"not_found","kb_base":"help","text":"Do you sell bikes?"}`,
		`{"msg":"webhook","kb":"found","kb_base":"help","text":"How much is shipping?"}`,
		`{"msg":"webhook","kb":"not_found","kb_base":"help","text":"do you  sell bikes"}`,
		`{"msg":"webhook","kb":"not_found","kb_base":"help","text":"Who is your CEO?"}`,
	}
	os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	out, err = runCmd(t, "kb", "gaps", "--config", path, "--log", log)
	if err != nil || !strings.Contains(out, "     2  do you sell bikes\n") || !strings.Contains(out, "     1  who is your ceo\n") || strings.Contains(out, "shipping") {
		t.Errorf("gaps: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "kb", "gaps", "--config", path); err == nil || !strings.Contains(out, "--log") {
		t.Errorf("gaps from the memory store: %v\n%s", err, out)
	}
	if out, err := runCmd(t, "kb", "build", "--config", path, "--base", "nope"); err == nil || !strings.Contains(out, `no knowledge base "nope"`) {
		t.Errorf("an unknown base: %v\n%s", err, out)
	}
}

// serve refuses to start without a bot's index, naming the file and the
// command that builds it.
func TestServeNeedsTheIndex(t *testing.T) {
	fake := llmtest.New(t)
	path := helpConfig(t, fake, articlesCopy(t), "")
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve", "--config", path}, env(nil), nil, &out, &out)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(filepath.Dir(path), "help.kbx")) || !strings.Contains(err.Error(), "kommbridge kb build --base help") {
		t.Errorf("%v\n%s", err, out.String())
	}
}

// A bot answering from the help center, through the webhook: the passages
// reach the model numbered in the system message, the answer cites the
// articles it used as link buttons (a number it was not given never
// shows), a question the help center does not answer gets the no-match
// message and its button without the model, the embeddings endpoint
// failing costs only the search by meaning, and a rebuilt index is served
// without a restart.
func TestHelpCenterThroughTheWebhook(t *testing.T) {
	fake := llmtest.New(t)
	dir := articlesCopy(t)
	path := helpConfig(t, fake, dir, ", cite: buttons")
	if out, err := runCmd(t, "kb", "build", "--config", path); err != nil {
		t.Fatal(out)
	}
	p := startProcess(t, path, env(nil))

	// The model cites the passage of the article it was asked about, and
	// a number it was not given.
	citing := func(reply, title string) {
		fake.Default(func(r llmtest.Request) llmtest.Reply {
			sys := r.Chat.Messages[0].Content
			n := 0
			for i := 1; i <= 5; i++ {
				if strings.Contains(sys, fmt.Sprintf("[%d] %s\n", i, title)) {
					n = i
				}
			}
			return llmtest.Reply{Content: fmt.Sprintf(`{"reply":%q,"confidence":0.9,"handoff":false,"handoff_reason":"","team":"","suggested_replies":[],"sources":[%d,9]}`, reply, n)}
		})
	}
	citing("Express costs 9.95 EUR and arrives the next working day.", "Shipping options and delivery times")
	got := post(t, p.base, `{"botId":"b","key":"k1","groupId":1,"message":"How much is express delivery?"}`)
	want := `[{"message":"Express costs 9.95 EUR and arrives the next working day.","metadata":{"contentType":"300","templateId":"3","payload":[{"type":"link","url":"https://help.acme.example/shipping","name":"Shipping options and delivery times","openLinkInNewTab":true}]}}]`
	if got != want {
		t.Errorf("answer:\n got %s\nwant %s", got, want)
	}
	sys := fake.Last(t).Chat.Messages[0].Content
	if !strings.Contains(sys, "## Help-center passages") || !strings.Contains(sys, "] Shipping options and delivery times\n<<<PASSAGE\n") ||
		!strings.Contains(sys, `"sources"`) {
		t.Errorf("the system message lacks the numbered passages or the sources field:\n%s", sys)
	}
	line := p.stderr.waitFor(t, `"kb":"found"`, 0)
	if l := p.stderr.all[line-1]; !strings.Contains(l, `"kb_passages":[`) || !strings.Contains(l, `"shipping#1"`) || !strings.Contains(l, `"kb_cited":["shipping#1"]`) || !strings.Contains(l, `"kb_dropped_sources":1`) ||
		strings.Contains(l, "Express costs") {
		t.Errorf("log line: %s", l)
	}

	calls := fake.Calls()
	got = post(t, p.base, `{"botId":"b","key":"k2","groupId":2,"message":"Is your CEO on LinkedIn?"}`)
	want = `[{"message":"I couldn't find that in our help center. You can ask it another way, or talk to a person.","metadata":{"contentType":"300","templateId":"6","payload":[{"title":"Talk to a person","message":"Talk to a person","replyMetadata":{"kommbridge_button":"human","TALK_TO_HUMAN":"true"}}]}}]`
	if got != want || fake.Calls() != calls {
		t.Errorf("not in the help center (%d model calls):\n got %s\nwant %s", fake.Calls()-calls, got, want)
	}
	got = post(t, p.base, `{"botId":"b","key":"k3","groupId":2,"message":"Talk to a person","metadata":{"kommbridge_button":"human","TALK_TO_HUMAN":"true"}}`)
	if !strings.Contains(got, `"KM_ASSIGN_TO":""`) {
		t.Errorf("the button does not hand off: %s", got)
	}

	fake.FailEmbeddings(http.StatusServiceUnavailable)
	citing("Refunds take 3 to 5 working days.", "Refund times")
	got = post(t, p.base, `{"botId":"b","key":"k4","groupId":4,"message":"When do I get my money back after returning?"}`)
	if !strings.Contains(got, "Refunds take 3 to 5 working days.") || strings.Contains(got, "KM_ASSIGN_TO") || !strings.Contains(got, `"url":"https://help.acme.example/refunds"`) {
		t.Errorf("embeddings down: %s\n%s", got, fake.Last(t).Chat.Messages[0].Content)
	}
	p.stderr.waitFor(t, `"msg":"question not embedded; searched by keywords"`, 0)
	metrics := get(t, p.base+"/metrics")
	for _, m := range []string{`kommbridge_kb_keyword_fallbacks_total{base="help"} 1`, `kommbridge_kb_searches_total{base="help",result="found"} 2`,
		`kommbridge_kb_searches_total{base="help",result="not_found"} 1`, `kommbridge_kb_citations_dropped_total{base="help"} 2`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
	fake.FailEmbeddings(0)

	// A new article, built while serving: the next question finds it.
	os.WriteFile(filepath.Join(dir, "whatsapp.md"), []byte("# WhatsApp support\n\nWe answer on WhatsApp at +49 341 555 0199, every day from 8:00 to 20:00.\n"), 0o644)
	seen := len(p.stderr.all)
	if out, err := runCmd(t, "kb", "build", "--config", path); err != nil || !strings.Contains(out, "1 pages read, 29 unchanged") {
		t.Fatalf("rebuild: %v %s", err, out)
	}
	p.stderr.waitFor(t, `"msg":"config reloaded"`, seen)
	citing("Yes, on WhatsApp every day.", "WhatsApp support")
	got = post(t, p.base, `{"botId":"b","key":"k5","groupId":5,"message":"Can I message you on WhatsApp?"}`)
	if !strings.Contains(got, `"url":"https://help.acme.example/whatsapp"`) {
		t.Errorf("the rebuilt index is not served: %s\n%s", got, fake.Last(t).Chat.Messages[0].Content)
	}
}

// The example configuration of docs/knowledge.md is valid.
func TestHelpCenterExample(t *testing.T) {
	cfg, err := config.Load("../../examples/helpcenter.yaml", env(nil))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(cfg.Knowledge)
	if len(cfg.Knowledge) != 1 || cfg.Bots[0].Knowledge == nil || !strings.Contains(string(data), "helpcenter/articles") {
		t.Errorf("%s", data)
	}
}

// eval suites check the help center end to end: what an answer cites,
// and whether the help center found anything.
func TestEvalHelpCenterExpectations(t *testing.T) {
	fake := llmtest.New(t)
	path := helpConfig(t, fake, articlesCopy(t), "")
	if out, err := runCmd(t, "kb", "build", "--config", path); err != nil {
		t.Fatal(out)
	}
	fake.Default(func(r llmtest.Request) llmtest.Reply {
		sys := r.Chat.Messages[0].Content
		n := 0
		for i := 1; i <= 5; i++ {
			if strings.Contains(sys, fmt.Sprintf("[%d] Shipping options and delivery times\n", i)) {
				n = i
			}
		}
		return llmtest.Reply{Content: fmt.Sprintf(`{"reply":"Express is 9.95 EUR.","confidence":0.9,"handoff":false,"handoff_reason":"","team":"","suggested_replies":[],"sources":[%d]}`, n)}
	})
	suite := filepath.Join(t.TempDir(), "help.yaml")
	os.WriteFile(suite, []byte(`
cases:
  - name: cites the shipping article
    turns:
      - user: "How much is express delivery?"
        expect: {cites: ["https://help.acme.example/shipping"], not_in_kb: false}
  - name: the CEO is not in the help center
    turns:
      - user: "Is your CEO on LinkedIn?"
        expect: {not_in_kb: true}
  - name: expects the wrong article
    turns:
      - user: "How much is express delivery?"
        expect: {cites: ["Warranty"]}
`), 0o644)
	out, err := runCmd(t, "eval", "--config", path, suite)
	if err == nil || !strings.Contains(out, "2/3 cases") || !strings.Contains(out, "cites: the answer does not cite Warranty (cites: https://help.acme.example/shipping)") {
		t.Errorf("%v\n%s", err, out)
	}
}
