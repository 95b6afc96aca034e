package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/kommbridge/kommbridge/eval"
	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// supportModel is a fake of a good support model for the shipped
// config.yaml and evals/example.yaml: it answers each question of the
// example suite as such a model would, and grades judge rubrics by what
// the answer says. broken makes it promise refunds and never hand off.
func supportModel(t *testing.T, broken bool) *llmtest.Server {
	fake := llmtest.New(t)
	contract := func(text string, handoff bool) llmtest.Reply {
		b, _ := json.Marshal(map[string]any{"reply": text, "confidence": 0.9, "handoff": handoff, "handoff_reason": "", "team": "", "suggested_replies": []string{}})
		return llmtest.Reply{Content: string(b), Usage: openai.Usage{PromptTokens: 300, CompletionTokens: 30, TotalTokens: 330}}
	}
	fake.Default(func(r llmtest.Request) llmtest.Reply {
		msgs := r.Chat.Messages
		last := msgs[len(msgs)-1]
		user := last.Content
		for _, p := range last.MultiContent {
			user += p.Text
		}
		if strings.HasPrefix(msgs[0].Content, "You grade") {
			var pass bool
			switch answer := user[strings.LastIndex(user, "Bot: "):]; {
			case strings.Contains(user, "Spanish"):
				pass = strings.Contains(answer, "pedido")
			case strings.Contains(user, "promise a refund"):
				pass = !strings.Contains(answer, "we will refund")
			case strings.Contains(user, "weather"):
				pass = strings.Contains(answer, "ACME")
			}
			return llmtest.Reply{Content: `{"pass": ` + map[bool]string{true: "true", false: "false"}[pass] + `, "reason": "graded"}`, Usage: openai.Usage{PromptTokens: 100, CompletionTokens: 8, TotalTokens: 108}}
		}
		switch {
		case strings.Contains(user, "order 1234"):
			return contract("Your order 1234 shipped on Monday and arrives Thursday.", false)
		case strings.Contains(user, "money back NOW"):
			return contract("I'm sorry. A teammate will take this over now.", !broken)
		case strings.Contains(user, "pedido"):
			return contract("Tu pedido salió el lunes.", false)
		case strings.Contains(user, "tent leaks") && broken:
			return contract("Yes, we will refund you, guaranteed.", false)
		case strings.Contains(user, "tent leaks"):
			return contract("Tents can be returned within 30 days; our team then checks the leak.", false)
		case strings.Contains(user, "Receipt 55120"):
			return contract("Thanks. I see the trail boots on receipt 55120; you can exchange them for another size.", false)
		case strings.Contains(user, "delivery address"):
			return contract("Sure. What is the new address?", false)
		case strings.Contains(user, "5 Main Street"):
			return contract("Done: we'll deliver to 5 Main Street, Springfield.", false)
		case strings.Contains(user, "weather"):
			return contract("I can only help with ACME orders and products.", false)
		}
		return contract("How can I help with your ACME order?", false)
	})
	return fake
}

// evalRun runs `kommbridge eval` in process from the repository's root,
// as an operator would, against fake as the configured endpoint.
func evalRun(t *testing.T, fake *llmtest.Server, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	wd, _ := os.Getwd()
	root := filepath.Join(wd, "..", "..")
	abs := make([]string, len(args))
	for i, a := range args {
		if strings.HasPrefix(a, "evals") || a == "config.yaml" {
			a = filepath.Join(root, a)
		}
		abs[i] = a
	}
	err := run(context.Background(), append([]string{"eval"}, abs...), env(map[string]string{"OPENAI_BASE_URL": fake.URL(), "OPENAI_API_KEY": "k"}), nil, &out, &errb)
	return out.String(), errb.String(), err
}

// The shipped example suite passes against a good model: every case, every
// expectation kind, the attachment served from a local file, the judge.
func TestEvalExampleSuite(t *testing.T) {
	fake := supportModel(t, false)
	dir := t.TempDir()
	out, stderr, err := evalRun(t, fake, "--config", "config.yaml", "--repeat", "2", "--json", filepath.Join(dir, "r.json"), "--junit", filepath.Join(dir, "r.xml"), "--html", filepath.Join(dir, "r.html"), "evals/")
	if err != nil {
		t.Fatalf("eval: %v\n%s\n%s", err, out, stderr)
	}
	for _, want := range []string{"greeting", "reads a receipt", "10/10 cases at or above 100%; 20/20 runs passed (100%)", "precision 1.00, recall 1.00"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"r.json", "r.xml", "r.html"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() < 200 {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	var sawDocument bool
	for _, r := range fake.Requests() {
		if strings.Contains(string(r.Body), "Receipt 55120") {
			sawDocument = true
		}
	}
	if !sawDocument {
		t.Error("the attached file did not reach the model")
	}
}

// CI gates on the exit code: a broken prompt fails (1) with the failures
// shown; suites that cannot run exit 2; --against shows where two
// configurations differ.
func TestEvalExitCodesAndAgainst(t *testing.T) {
	broken := supportModel(t, true)
	out, _, err := evalRun(t, broken, "--config", "config.yaml", "evals/example.yaml")
	if err != errEvalFailed {
		t.Fatalf("a broken model: %v, want errEvalFailed\n%s", err, out)
	}
	for _, want := range []string{
		"FAIL angry customer is handed off (run 1)",
		"reason: want handoff reason model, got false_promise",
		"no_false_promise: the reply promised a person without handing off (kommbridge: handoff)",
		`not_contains: the answer contains "guarantee"`,
		`judge: "The answer does not promise a refund; it may explain the return policy.": graded`,
		"8/10 cases at or above 100%",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := evalRun(t, broken, "--config", "config.yaml", "--min-pass", "0", "evals/example.yaml"); err != nil {
		t.Errorf("--min-pass 0: %v", err)
	}

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("cases: [{name: x, turns: [{user: a, expect: {handof: true}}]}]\n"), 0o644)
	if _, stderr, err := evalRun(t, broken, "--config", "config.yaml", bad); err != errCannotRun || !strings.Contains(stderr, "handof") {
		t.Errorf("a bad suite: %v, %s", err, stderr)
	}
	if _, _, err := evalRun(t, broken, "--config", "missing.yaml", "evals/"); err != errCannotRun {
		t.Errorf("a missing config: %v", err)
	}

	// B is the same bot with handoffs turned off by phrase and confidence:
	// the button case is the same, the phrase case differs.
	cfg, _ := os.ReadFile("../../config.yaml")
	other := filepath.Join(t.TempDir(), "other.yaml")
	os.WriteFile(other, []byte(strings.Replace(string(cfg), `phrases: ["talk to a human", "real person", "speak to an agent"]`, `phrases: []`, 1)), 0o644)
	good := supportModel(t, false)
	dir := t.TempDir()
	out, _, err = evalRun(t, good, "--config", "config.yaml", "--against", other, "--junit", filepath.Join(dir, "r.xml"), "--html", filepath.Join(dir, "r.html"), "evals/example.yaml")
	if err != errEvalFailed {
		t.Fatalf("--against, B below --min-pass: %v, want errEvalFailed\n%s", err, out)
	}
	for _, want := range []string{"== A: ", "== B: ", "FAIL asks for a person in words (run 1)", "fails: " + other + ": below 100%: asks for a person in words"} {
		if !strings.Contains(out, want) {
			t.Errorf("--against output lacks %q:\n%s", want, out)
		}
	}
	xmlOut, _ := os.ReadFile(filepath.Join(dir, "r.xml"))
	htmlOut, _ := os.ReadFile(filepath.Join(dir, "r.html"))
	if strings.Count(string(xmlOut), "<testsuite ") != 2 || !strings.Contains(string(xmlOut), other+": ") {
		t.Errorf("JUnit holds not a suite per configuration:\n%s", xmlOut)
	}
	if !strings.Contains(string(htmlOut), "Side by side") || !strings.Contains(string(htmlOut), "B: "+other) {
		t.Error("the HTML report does not show both configurations")
	}
	// With A the baseline, B's failure of a case A passes is a regression;
	// the other way round, B improves on A, and nothing fails.
	if out, _, err := evalRun(t, good, "--config", "config.yaml", "--against", other, "--baseline", "evals/example.yaml"); err != errEvalFailed || !strings.Contains(out, "1 regression(s) against the baseline (A)") {
		t.Errorf("--baseline with a regression: %v\n%s", err, out)
	}
	if out, _, err := evalRun(t, good, "--config", other, "--against", "config.yaml", "--baseline", "evals/example.yaml"); err != nil || !strings.Contains(out, "0 regression(s)") {
		t.Errorf("--baseline with none: %v\n%s", err, out)
	}
	var marked []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "*") {
			marked = append(marked, strings.Join(strings.Fields(l)[1:], " "))
		}
	}
	if len(marked) != 1 || !strings.HasPrefix(marked[0], "asks for a person in words 1/1 0/1 1/1 0/1") {
		t.Errorf("--against marked %q:\n%s", marked, out)
	}
}

// try --transcript, then eval init: the questions a user asked become a
// suite that runs.
func TestEvalInitFromTry(t *testing.T) {
	fake := supportModel(t, false)
	dir := t.TempDir()
	transcript := filepath.Join(dir, "t.jsonl")
	cfg := filepath.Join(dir, "config.yaml")
	shipped, _ := os.ReadFile("../../config.yaml")
	os.WriteFile(cfg, shipped, 0o644)
	getenv := env(map[string]string{"OPENAI_BASE_URL": fake.URL(), "OPENAI_API_KEY": "k"})
	stdin := strings.NewReader("/context kmUserLocale=de plan=Pro\nWhere is my order 1234?\n/attach https://example.com/receipt.png\nWhat about this one?\nCan I speak to an agent please\n/quit\n")
	if err := run(context.Background(), []string{"try", "--config", cfg, "--transcript", transcript}, getenv, stdin, &bytes.Buffer{}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	suiteFile := filepath.Join(dir, "evals", "starter.yaml")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"eval", "init", "--from", transcript, "--out", suiteFile}, getenv, nil, &out, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "wrote 1 case(s) from 1 conversation(s)") {
		t.Errorf("init: %s", out.String())
	}
	written, _ := os.ReadFile(suiteFile)
	for _, want := range []string{`- user: "Where is my order 1234?"`, "# the bot answered: Your order 1234 shipped", "expect: {handoff: true}",
		`context: {"kmUserLocale": "de", "plan": "Pro"}`, `attachments: ["https://example.com/receipt.png"]`} {
		if !strings.Contains(string(written), want) {
			t.Errorf("starter lacks %q:\n%s", want, written)
		}
	}
	out.Reset()
	if err := run(context.Background(), []string{"eval", "--config", cfg, suiteFile}, getenv, nil, &out, &bytes.Buffer{}); err != nil {
		t.Errorf("the starter suite: %v\n%s", err, out.String())
	}
	var errs bytes.Buffer
	if err := run(context.Background(), []string{"eval", "init", "--from", transcript, "--out", suiteFile}, getenv, nil, &out, &errs); err != errCannotRun || !strings.Contains(errs.String(), "exists (--force overwrites it)") {
		t.Errorf("init over an existing file: %v, %s", err, errs.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"eval", "init", "--from", transcript, "--out", "-"}, getenv, nil, &out, &bytes.Buffer{}); err != nil || !strings.Contains(out.String(), `- user: "Where is my order 1234?"`) {
		t.Errorf("init to standard output: %v\n%s", err, out.String())
	}
	errs.Reset()
	if err := run(context.Background(), []string{"eval", "init"}, getenv, nil, &out, &errs); err != errCannotRun || !strings.Contains(errs.String(), "--from names the transcript file") {
		t.Errorf("init without --from: %v, %s", err, errs.String())
	}
}

// eval.judge grades on its own endpoint, with its own key; the bot's
// endpoint never sees a grading request, and prices give a cost.
func TestEvalJudgeEndpointAndPrices(t *testing.T) {
	bot, judge := supportModel(t, false), supportModel(t, false)
	judge.RequireKey("judge-key")
	shipped, _ := os.ReadFile("../../config.yaml")
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfg, append(shipped, []byte("eval:\n  judge: {base_url: \""+judge.URL()+"\", api_key: judge-key, model: grader}\n  prices: {gpt-4o-mini: {input: 1000, output: 2000}}\n")...), 0o644)
	out, _, err := evalRun(t, bot, "--config", cfg, "evals/example.yaml")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, r := range bot.Requests() {
		if strings.HasPrefix(r.Chat.Messages[0].Content, "You grade") {
			t.Fatal("the bot's endpoint was asked to grade")
		}
	}
	graded := 0
	for _, r := range judge.Requests() {
		if r.Chat.Model != "grader" || r.Header.Get("Authorization") != "Bearer judge-key" {
			t.Errorf("judge request: model %q, auth %q", r.Chat.Model, r.Header.Get("Authorization"))
		}
		graded++
	}
	if graded != 3 {
		t.Errorf("%d grading requests, want 3 (one per judge expectation)", graded)
	}
	// 8 model turns of 300 tokens in and 30 out at $1000/$2000 a million.
	if !strings.Contains(out, "estimated cost $2.8800") {
		t.Errorf("cost:\n%s", out)
	}
}

// A local attachment whose name holds braces is served (the route is its
// number; it once became a ServeMux pattern and panicked).
func TestEvalServesOddFileNames(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "receipt {copy}.txt"), []byte("Receipt 55120"), 0o644)
	path := filepath.Join(dir, "s.yaml")
	os.WriteFile(path, []byte("cases:\n  - name: a\n    turns: [{user: read it, attachments: [\"receipt {copy}.txt\"]}]\n"), 0o644)
	suites, err := eval.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	files, err := serveFiles(suites)
	if err != nil {
		t.Fatal(err)
	}
	defer files.close()
	u, err := files.url(filepath.Join(dir, "receipt {copy}.txt"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != "Receipt 55120" {
		t.Errorf("served %q", b)
	}
}

// --rerun-failures runs only the cases a JSON report shows failing; --cache
// makes an unchanged rerun ask the model nothing.
func TestEvalRerunAndCache(t *testing.T) {
	dir := t.TempDir()
	report := filepath.Join(dir, "r.json")
	broken := supportModel(t, true)
	if _, _, err := evalRun(t, broken, "--config", "config.yaml", "--json", report, "evals/example.yaml"); err != errEvalFailed {
		t.Fatalf("broken: %v", err)
	}
	good := supportModel(t, false)
	out, _, err := evalRun(t, good, "--config", "config.yaml", "--rerun-failures", report, "--cache", filepath.Join(dir, "cache"), "evals/example.yaml")
	if err != nil || !strings.Contains(out, "2/2 cases at or above 100%") {
		t.Fatalf("rerun of the 2 failures: %v\n%s", err, out)
	}
	calls := good.Calls()
	out, _, err = evalRun(t, good, "--config", "config.yaml", "--rerun-failures", report, "--cache", filepath.Join(dir, "cache"), "evals/example.yaml")
	if err != nil || good.Calls() != calls || !strings.Contains(out, "answer(s) reused, 0 asked") {
		t.Errorf("the cached rerun asked the model %d times: %v\n%s", good.Calls()-calls, err, out)
	}
}
