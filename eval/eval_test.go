package eval_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/eval"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/llm/llmtest"
	"github.com/kommbridge/kommbridge/media"
	"github.com/kommbridge/kommbridge/store/memory"
)

const bots = `
bots:
  - id: "*"
    system_prompt: "You are ACME's assistant."
    reply_format: json_object
    welcome: {text: "Hi! How can I help?", suggested_replies: ["Track my order", "Returns"]}
    resolve: auto
    handoff:
      phrases: ["talk to a human"]
      teams: {billing: "2841"}
`

// pipeline is kommbridge's bridge in front of the fake model, as the
// webhook runs it.
func pipeline(t *testing.T) (*bridge.Bridge, *llmtest.Server, *llm.Client) {
	t.Helper()
	return pipelineWith(t, bots)
}

// pipelineWith is pipeline with other bots.
func pipelineWith(t *testing.T, bots string) (*bridge.Bridge, *llmtest.Server, *llm.Client) {
	t.Helper()
	model := llmtest.New(t)
	yml := "llm: {base_url: " + model.URL() + ", api_key: k, max_retries: 0}\n" + bots
	cfg, err := config.Parse([]byte(yml), "test.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	client, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{{BaseURL: cfg.LLM.BaseURL, APIKey: "k", Model: cfg.LLM.Model}}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.New(cfg, bridge.Deps{Store: memory.New(memory.Options{}), Model: client, Media: media.New(media.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	return b, model, client
}

func reply(text string, handoff bool, team string, suggested ...string) llmtest.Reply {
	if suggested == nil {
		suggested = []string{}
	}
	b, _ := json.Marshal(map[string]any{"reply": text, "confidence": 0.9, "handoff": handoff, "handoff_reason": "", "team": team, "suggested_replies": suggested})
	return llmtest.Reply{Content: string(b), Usage: openaiUsage(40, 12)}
}

// lastUser is the text of a request's last user message.
func lastUser(r llmtest.Request) string {
	m := r.Chat.Messages
	return m[len(m)-1].Content
}

func suite(t *testing.T, yml string) []*eval.Suite {
	t.Helper()
	path := filepath.Join(t.TempDir(), "suite.yaml")
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := eval.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Each expectation kind, once met and once not, against what the fake
// model answers: the failures name the check and say what was seen.
func TestExpectations(t *testing.T) {
	b, model, _ := pipeline(t)
	model.Default(func(r llmtest.Request) llmtest.Reply {
		switch u := lastUser(r); {
		case strings.Contains(u, "refund"):
			return reply("A teammate from billing will help.", true, "billing")
		case strings.Contains(u, "solved"):
			return llmtest.Reply{Content: `{"reply":"Glad it works!","confidence":0.9,"handoff":false,"handoff_reason":"","team":"","suggested_replies":[],"resolved":true}`}
		default:
			return reply("Your order 1234 shipped on Monday.", false, "", "Track it", "Returns")
		}
	})
	s := suite(t, `
cases:
  - name: all met
    turns:
      - welcome: true
        expect: {outcome: welcome, buttons: {includes: [Returns], count: 2}}
      - user: "where is my order?"
        expect: {handoff: false, contains: ["order 1234"], not_contains: ["refund"], matches: "shipped on \\w+day", buttons: {includes: ["track it"], min: 1, max: 2}, outcome: answered, max_latency: 30s, max_tokens: 100}
      - user: "I want a refund"
        expect: {handoff: true, reason: model, team: "2841"}
      - user: "solved, thanks"
        expect: {resolved: true, outcome: resolved}
      - talk_to_human: true
        expect: {handoff: true, reason: button}
  - name: none met
    turns:
      - user: "where is my order?"
        expect: {handoff: true, contains: ["tomorrow"], not_contains: ["Monday"], matches: "^Sorry", buttons: {includes: ["Cancel"], count: 1}, outcome: handoff, max_tokens: 5, max_latency: 1ns}
      - user: "I want a refund"
        expect: {handoff: false, reason: low_confidence, team: "9999", resolved: true}
`)
	runs := eval.RunSuites(context.Background(), b, s, eval.Options{})
	if !runs[0].Passed() {
		t.Errorf("all met: failed: %+v", failures(runs[0]))
	}
	got := failures(runs[1])
	latency := regexp.MustCompile(`took [0-9.]+[µm]?s,`)
	for i := range got {
		got[i] = latency.ReplaceAllString(got[i], "took {latency},")
	}
	want := []string{
		"handoff: want a handoff, got none (outcome answered)",
		`contains: the answer does not contain "tomorrow"`,
		`not_contains: the answer contains "Monday"`,
		"matches: the answer does not match /^Sorry/",
		"buttons: no button \"Cancel\" (buttons: Track it, Returns)",
		"buttons: want 1 buttons, got 2 (Track it, Returns)",
		"outcome: want outcome handoff, got answered",
		"max_latency: took {latency}, over 1ns",
		"max_tokens: the answer used 12 tokens, over 5",
		"handoff: want no handoff, got one (reason model)",
		"reason: want handoff reason low_confidence, got model",
		"team: want team 9999, got 2841",
		"resolved: want resolved true, got false",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
}

func failures(r *eval.Run) []string {
	var out []string
	for _, tr := range r.Turns {
		for _, f := range tr.Failures {
			out = append(out, f.Check+": "+f.Reason)
		}
	}
	return out
}

// --repeat runs each case again in its own conversation; a model that
// hands off every other time passes half the runs, and the totals count
// handoffs, precision and recall against the expectations.
func TestRepeatAndPassRates(t *testing.T) {
	b, model, _ := pipeline(t)
	var n atomic.Int64
	model.Default(func(r llmtest.Request) llmtest.Reply {
		// The lost parcel is handed off every other time; hello never.
		return reply("Let me check.", strings.Contains(lastUser(r), "parcel") && n.Add(1)%2 == 0, "")
	})
	s := suite(t, `
cases:
  - name: flaky
    turns:
      - user: "my parcel is lost"
        expect: {handoff: false}
  - name: steady
    turns:
      - user: "hello"
`)
	runs := eval.RunSuites(context.Background(), b, s, eval.Options{Repeat: 4, Concurrency: 3})
	if len(runs) != 8 {
		t.Fatalf("%d runs, want 8", len(runs))
	}
	convs := map[string]bool{}
	for _, r := range model.Requests() {
		if n := len(r.Chat.Messages); n != 2 {
			t.Errorf("a conversation saw another's history: %d messages", n)
		}
		convs[lastUser(r)] = true
	}
	sum := eval.Summarize("c.yaml", runs, nil, 1)
	flaky, steady := sum.Cases[0], sum.Cases[1]
	if flaky.Runs != 4 || flaky.Passed != 2 || flaky.PassRate != 0.5 || steady.Passed != 4 {
		t.Errorf("flaky %d/%d (%v), steady %d/%d", flaky.Passed, flaky.Runs, flaky.PassRate, steady.Passed, steady.Runs)
	}
	if below := sum.Below(); len(below) != 1 || below[0].Name != "flaky" {
		t.Errorf("below: %v", below)
	}
	tt := sum.Totals
	if tt.Handoffs != 2 || tt.Turns != 8 || tt.HandoffRate != 0.25 {
		t.Errorf("handoffs %d/%d (%v)", tt.Handoffs, tt.Turns, tt.HandoffRate)
	}
	// Expectations say no handoff for the flaky case's 4 turns, nothing
	// for the steady one's: 2 false positives, no true ones.
	if tt.Precision == nil || *tt.Precision != 0 || tt.Recall != nil {
		t.Errorf("precision %v recall %v", tt.Precision, tt.Recall)
	}
	if sum2 := eval.Summarize("c.yaml", runs, nil, 0.5); len(sum2.Below()) != 0 {
		t.Errorf("min-pass 0.5 still fails %v", sum2.Below())
	}
}

// A judge expectation asks the model for a yes or no, and its reason is
// what the report shows; a judge that cannot answer fails the check.
func TestJudge(t *testing.T) {
	b, model, client := pipeline(t)
	model.Default(func(r llmtest.Request) llmtest.Reply {
		sys := r.Chat.Messages[0].Content
		if strings.HasPrefix(sys, "You grade") {
			grading := lastUser(r)
			switch {
			case strings.Contains(grading, "Spanish") && strings.Contains(grading, "Bot: Tu pedido"):
				return llmtest.Reply{Content: `{"pass": true, "reason": "It is in Spanish."}`}
			case strings.Contains(grading, "Spanish"):
				return llmtest.Reply{Content: `{"pass": false, "reason": "The answer is in English."}`}
			}
			return llmtest.Reply{Content: "I am not sure."}
		}
		if strings.Contains(lastUser(r), "pedido") {
			return reply("Tu pedido salió el lunes.", false, "")
		}
		return reply("Your order shipped on Monday.", false, "")
	})
	s := suite(t, `
cases:
  - name: spanish
    turns:
      - user: "¿Dónde está mi pedido?"
        expect: {judge: "The answer is in Spanish."}
  - name: english
    turns:
      - user: "where is my order?"
        expect: {judge: "The answer is in Spanish."}
  - name: undecided
    turns:
      - user: "hello"
        expect: {judge: "Says hello."}
`)
	runs := eval.RunSuites(context.Background(), b, s, eval.Options{Judge: eval.ModelJudge{Model: client}})
	got := [][]string{failures(runs[0]), failures(runs[1]), failures(runs[2])}
	want := [][]string{nil, {`judge: "The answer is in Spanish.": The answer is in English.`}, {"judge: the judge failed: the judge's answer is neither yes nor no: I am not sure."}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if runs[0].Turns[0].Judge != "It is in Spanish." {
		t.Errorf("judge's reason: %q", runs[0].Turns[0].Judge)
	}
	noJudge := eval.RunSuites(context.Background(), b, s[:1], eval.Options{})
	if f := failures(noJudge[0]); len(f) != 1 || f[0] != "judge: no judge in this run" {
		t.Errorf("without a judge: %v", f)
	}
}

// The JSON and JUnit outputs: the fields CI reads, with the failures.
func TestMachineReadable(t *testing.T) {
	b, model, _ := pipeline(t)
	model.Default(func(llmtest.Request) llmtest.Reply { return reply("Shipped.", false, "") })
	s := suite(t, `
cases:
  - name: passes
    turns: [{user: "a", expect: {contains: [shipped]}}]
  - name: fails
    turns: [{user: "b", expect: {handoff: true}}]
`)
	runs := eval.RunSuites(context.Background(), b, s, eval.Options{Repeat: 2})
	sum := eval.Summarize("c.yaml", runs, map[string]config.Price{"gpt-4o-mini": {Input: 0.15, Output: 0.6}}, 1)

	var js bytes.Buffer
	if err := (eval.Report{Summary: sum}).WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Summary struct {
			Config string `json:"config"`
			Cases  []struct {
				Name     string  `json:"name"`
				Suite    string  `json:"suite"`
				Runs     int     `json:"runs"`
				Passed   int     `json:"passed"`
				PassRate float64 `json:"pass_rate"`
				Failed   []struct {
					Run   int `json:"run"`
					Turns []struct {
						Input    string `json:"input"`
						Text     string `json:"text"`
						Failures []struct{ Check, Reason string }
					} `json:"turns"`
				} `json:"failed"`
			} `json:"cases"`
			Totals struct {
				Runs     int      `json:"runs"`
				PassRate float64  `json:"pass_rate"`
				Cost     *float64 `json:"cost_usd"`
				P50      int64    `json:"p50_ns"`
			} `json:"totals"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatalf("JSON: %v\n%s", err, js.String())
	}
	c := doc.Summary.Cases
	if len(c) != 2 || c[0].PassRate != 1 || c[1].Passed != 0 || len(c[1].Failed) != 2 || c[1].Failed[0].Turns[0].Text != "Shipped." ||
		c[1].Failed[0].Turns[0].Failures[0].Check != "handoff" || doc.Summary.Totals.Cost == nil || *doc.Summary.Totals.Cost <= 0 || doc.Summary.Totals.P50 <= 0 {
		t.Errorf("JSON does not hold the results:\n%s", js.String())
	}

	var xb bytes.Buffer
	if err := sum.WriteJUnit(&xb); err != nil {
		t.Fatal(err)
	}
	var ju struct {
		XMLName  xml.Name `xml:"testsuites"`
		Tests    int      `xml:"tests,attr"`
		Failures int      `xml:"failures,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name    string `xml:"name,attr"`
				Failure *struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(xb.Bytes(), &ju); err != nil {
		t.Fatalf("JUnit: %v\n%s", err, xb.String())
	}
	if ju.Tests != 2 || ju.Failures != 1 || len(ju.Suites) != 1 || ju.Suites[0].Cases[0].Failure != nil || ju.Suites[0].Cases[1].Failure == nil ||
		!strings.Contains(ju.Suites[0].Cases[1].Failure.Text, "want a handoff") || ju.Suites[0].Cases[1].Failure.Message != "0/2 runs passed (0%), below 100%" {
		t.Errorf("JUnit does not hold the results:\n%s", xb.String())
	}
}

// --against: the same suites with two configurations, the cases that
// differ marked.
func TestCompare(t *testing.T) {
	b, model, _ := pipeline(t)
	var handoff atomic.Bool
	model.Default(func(llmtest.Request) llmtest.Reply { return reply("Let me look.", handoff.Load(), "") })
	s := suite(t, `
cases:
  - name: lost parcel
    turns: [{user: "my parcel is lost", expect: {handoff: true}}]
  - name: hello
    turns: [{user: "hello"}]
`)
	a := eval.Summarize("a.yaml", eval.RunSuites(context.Background(), b, s, eval.Options{}), nil, 1)
	handoff.Store(true)
	bb := eval.Summarize("b.yaml", eval.RunSuites(context.Background(), b, s, eval.Options{}), nil, 1)
	var out bytes.Buffer
	eval.WriteCompare(&out, a, bb)
	lines := strings.Split(out.String(), "\n")
	var lost, hello string
	for _, l := range lines {
		switch {
		case strings.Contains(l, "lost parcel"):
			lost = l
		case strings.Contains(l, "hello"):
			hello = l
		}
	}
	f := strings.Fields(lost)
	if len(f) < 7 || f[0] != "*" || f[3] != "0/1" || f[4] != "1/1" || f[5] != "0/1" || f[6] != "1/1" || !strings.HasPrefix(hello, "*") {
		t.Errorf("compare:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "2 case(s) differ") {
		t.Errorf("compare:\n%s", out.String())
	}
}

// Suite files are checked before anything runs: every problem named with
// its file, case and turn.
func TestSuiteProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte(`
cases:
  - name: a
    turns:
      - user: "x"
        welcome: true
      - user: "y"
        attachments: [missing.pdf]
        expect: {matches: "(", reason: angry, outcome: great}
  - name: a
    turns: []
`), 0o644)
	_, err := eval.Load(path)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		`case "a" turn 1: needs exactly one of user`,
		`case "a" turn 2.attachments: missing.pdf`,
		`case "a" turn 2.expect.matches: error parsing regexp`,
		`case "a" turn 2.expect.reason: must be one of`,
		`case "a" turn 2.expect.outcome: must be one of`,
		`cases[1].name: "a" is used by more than one case`,
		`case "a": has no turns`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in\n%v", want, err)
		}
	}
	os.WriteFile(path, []byte("cases:\n  - name: a\n    turns: [{user: x, expect: {handoff: yes, contain: [y]}}]\n"), 0o644)
	_, err = eval.Load(path)
	if want := `bad.yaml:3: unknown key "contain" in case "a", turn 1, expect: did you mean "contains"? (valid: attach, buttons,`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("an unknown key: %v\nwant %s", err, want)
	}
	os.WriteFile(path, []byte("cases:\n  - name: b\n    turns: [{usr: x}]\n    tags: [y]\n"), 0o644)
	_, err = eval.Load(path)
	for _, want := range []string{`unknown key "usr" in case "b", turn 1: did you mean "user"?`, `bad.yaml:4: unknown key "tags" in case "b" (valid: bot, context, name, turns)`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("unknown keys: %v\nwant %s", err, want)
		}
	}
}

// eval init: transcripts, try's or an export's, become a suite that loads.
func TestStarterFromTranscripts(t *testing.T) {
	in := strings.Join([]string{
		`{"conversation":"c1","role":"user","text":"","event":"WELCOME"}`,
		`{"conversation":"c1","role":"bot","text":"Hi! How can I help?","handoff":false}`,
		`{"conversation":"c1","role":"user","text":"Where is my \"order\"?"}`,
		`{"conversation":"c1","role":"bot","text":"It shipped.","handoff":false}`,
		`{"groupId":42,"sender":"customer","message":"I want a refund"}`,
		`{"groupId":42,"sender":"agent","message":"Connecting you."}`,
		`{"botId":"b","groupId":43,"from":"u","message":"Where is my \"order\"?"}`,
		`{"botId":"b","groupId":44,"from":"u","message":""}`,
	}, "\n")
	convs, err := eval.ReadTranscripts(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(convs) != 3 {
		t.Fatalf("%d conversations, want 3 (the empty one skipped)", len(convs))
	}
	var out bytes.Buffer
	n, err := eval.WriteStarter(&out, convs, "support-bot", "export.jsonl", 50)
	if err != nil || n != 2 {
		t.Fatalf("%d cases, %v (the repeated question is skipped)", n, err)
	}
	s := suite(t, out.String())
	c := s[0].Cases
	if s[0].Bot != "support-bot" || len(c) != 2 || c[0].Name != `Where is my "order"?` || !c[0].Turns[0].Welcome ||
		c[0].Turns[1].Expect.Handoff == nil || *c[0].Turns[1].Expect.Handoff || c[1].Turns[0].User != "I want a refund" || c[1].Turns[0].Expect.Handoff != nil {
		t.Errorf("starter:\n%s", out.String())
	}
	if _, err := eval.ReadTranscripts(strings.NewReader("not json\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad line: %v", err)
	}
}

// A model that fails is named in the report: the turn says why the error
// policy answered, and the totals count such turns.
func TestModelFailureShown(t *testing.T) {
	b, model, _ := pipeline(t)
	model.Default(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Status: 500, Body: `{"error":{"message":"upstream exploded"}}`}
	})
	s := suite(t, "cases: [{name: down, turns: [{user: hi, expect: {handoff: false}}]}]\n")
	sum := eval.Summarize("c.yaml", eval.RunSuites(context.Background(), b, s, eval.Options{}), nil, 1)
	var out bytes.Buffer
	sum.WriteText(&out)
	for _, want := range []string{"outcome handoff; because: ", "upstream exploded", "the model or the store failed in 1 turn(s)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

// An interrupted run (Ctrl-C) starts no further conversation; those under
// way finish.
func TestInterrupted(t *testing.T) {
	b, model, _ := pipeline(t)
	ctx, cancel := context.WithCancel(context.Background())
	model.Default(func(llmtest.Request) llmtest.Reply {
		cancel() // the operator presses Ctrl-C while the first answer is made
		return reply("Sure.", false, "")
	})
	s := suite(t, "cases: [{name: a, turns: [{user: hi}]}, {name: b, turns: [{user: hi}]}, {name: c, turns: [{user: hi}]}]\n")
	runs := eval.RunSuites(ctx, b, s, eval.Options{Concurrency: 1})
	if len(runs) != 1 || !runs[0].Passed() || model.Calls() != 1 {
		t.Errorf("%d runs, %d model calls; want the one under way, finished", len(runs), model.Calls())
	}
}

// A suite's local attachments stay in its folder: an absolute path, a ".."
// out of it and a symbolic link leading out are refused, unless allowed.
func TestAttachmentsStayInTheSuitesFolder(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "suites")
	os.Mkdir(dir, 0o755)
	secret := filepath.Join(root, "secret.txt")
	os.WriteFile(secret, []byte("not for the model"), 0o600)
	os.WriteFile(filepath.Join(dir, "ok {1}.txt"), []byte("fine"), 0o644)
	os.Symlink(secret, filepath.Join(dir, "link.txt"))
	for _, tt := range []struct {
		attach string
		ok     bool
	}{
		{"ok {1}.txt", true},
		{"../secret.txt", false},
		{secret, false},
		{"link.txt", false},
	} {
		path := filepath.Join(dir, "s.yaml")
		os.WriteFile(path, []byte(fmt.Sprintf("cases:\n  - name: a\n    turns: [{user: x, attachments: [%q]}]\n", tt.attach)), 0o644)
		_, err := eval.Load(path)
		if (err == nil) != tt.ok {
			t.Errorf("%s: error %v, want ok %v", tt.attach, err, tt.ok)
		}
		if !tt.ok && !strings.Contains(fmt.Sprint(err), "--allow-files") {
			t.Errorf("%s: the error does not say how to allow it: %v", tt.attach, err)
		}
		if _, err := eval.LoadWith(eval.LoadOptions{AllowFiles: true}, path); err != nil {
			t.Errorf("%s with AllowFiles: %v", tt.attach, err)
		}
	}
}

// Expectations on what kommbridge renders beyond text: the form shown, the
// attach button, cards, a list, images, link buttons; each met, and each
// failing with what was seen.
func TestRenderedExpectations(t *testing.T) {
	b, model, _ := pipelineWith(t, `
bots:
  - id: "*"
    reply_format: json_object
    link_buttons: true
    rich: [cards, lists, images]
    ask_for_files: true
    forms: {contact: {fields: [{name: email, label: Email}]}}
`)
	model.Default(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Content: `{"reply":"See [returns](https://acme.example/returns).","confidence":0.9,` +
			`"cards":[{"title":"Pro","subtitle":"$10","image_url":"https://acme.example/pro.png","buttons":[{"label":"Buy","url":"https://acme.example/buy"}]},{"title":"Team"}],` +
			`"list":{"header":"Topics","items":[{"title":"Billing"},{"title":"Returns"}]},"images":[{"url":"https://acme.example/a.png","caption":"Side by side"}],` +
			`"form":"contact","request_file":true}`}
	})
	s := suite(t, `
cases:
  - name: met
    turns:
      - user: "plans?"
        expect:
          form: contact
          attach: true
          cards: {count: 2, titles: [Pro]}
          list: {count: 2, titles: [Billing]}
          images: {count: 1, titles: [Side by side]}
          links: ["https://acme.example/returns"]
  - name: not met
    turns:
      - user: "plans?"
        expect:
          form: survey
          attach: false
          cards: {count: 3, titles: [Enterprise]}
          list: {titles: [Shipping]}
          images: {count: 0}
          links: ["https://acme.example/shipping"]
`)
	sum := eval.Summarize("c.yaml", eval.RunSuites(context.Background(), b, s, eval.Options{}), nil, 1)
	if sum.Cases[0].Passed != 1 {
		t.Errorf("met: %+v", sum.Cases[0].Failed)
	}
	var got []string
	for _, f := range sum.Cases[1].Failed[0].Turns[0].Failures {
		got = append(got, f.Check+": "+f.Reason)
	}
	want := []string{
		"form: want form survey shown, got contact",
		"attach: want the attach button opened false, got true",
		"cards: want 3, got 2 (Pro, Team)",
		`cards: none titled "Enterprise" (Pro, Team)`,
		`list: none titled "Shipping" (Billing, Returns)`,
		"images: want 0, got 1 (Side by side, https://acme.example/a.png)",
		"links: no link button to https://acme.example/shipping (links: https://acme.example/returns)",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
}

// With eval.prices, the reports show the estimated cost as a figure (the
// HTML report once printed a pointer).
func TestCostInReports(t *testing.T) {
	b, model, _ := pipeline(t)
	model.Default(func(llmtest.Request) llmtest.Reply { return reply("Shipped.", false, "") })
	s := suite(t, "cases:\n  - name: a\n    turns: [{user: hi, expect: {handoff: true}}]\n")
	sum := eval.Summarize("c.yaml", eval.RunSuites(context.Background(), b, s, eval.Options{}),
		map[string]config.Price{"gpt-4o-mini": {Input: 0.15, Output: 0.6}}, 1)
	var html, text bytes.Buffer
	if err := sum.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	sum.WriteText(&text)
	// 40 tokens in at $0.15/M and 12 out at $0.60/M.
	for _, out := range []string{html.String(), text.String()} {
		if !strings.Contains(out, "$0.0000") || strings.Contains(out, "%!") {
			t.Errorf("no cost figure in:\n%s", out)
		}
	}
	if !strings.Contains(html.String(), "estimated cost<b>$0.0000</b>") {
		t.Error("the HTML report's cost is not the figure")
	}
}

// --cache: the second run of an unchanged suite asks the model nothing,
// the judge included; another configuration (salt) shares no answer.
func TestCacheAsksNothingTwice(t *testing.T) {
	_, model, client := pipeline(t)
	model.Default(func(r llmtest.Request) llmtest.Reply {
		if strings.Contains(r.Chat.Messages[0].Content, "grade") {
			return llmtest.Reply{Content: `{"pass": true, "reason": "ok"}`}
		}
		return reply("Shipped on Monday.", false, "")
	})
	cfg, err := config.Parse([]byte(bots), "test.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cache := &eval.Cache{Dir: t.TempDir()}
	s := suite(t, "cases:\n  - name: a\n    turns: [{user: where is my order, expect: {judge: says when}}]\n")
	run := func() {
		// A fresh bridge (and store) each run, as each kommbridge eval is.
		b, err := bridge.New(cfg, bridge.Deps{Store: memory.New(memory.Options{}), Model: cache.Wrap(client, "chat"), Media: media.New(media.Options{})})
		if err != nil {
			t.Fatal(err)
		}
		opts := eval.Options{Judge: eval.ModelJudge{Model: cache.Wrap(client, "judge")}}
		sum := eval.Summarize("c.yaml", eval.RunSuites(context.Background(), b, s, opts), nil, 1)
		if sum.Totals.RunsPassed != 1 {
			t.Fatalf("%+v", sum.Cases[0].Failed)
		}
	}
	run()
	calls := model.Calls()
	if calls != 2 || cache.Misses.Load() != 2 {
		t.Fatalf("first run: %d model calls, %d misses", calls, cache.Misses.Load())
	}
	run()
	if model.Calls() != calls || cache.Hits.Load() != 2 {
		t.Errorf("second run: %d more calls, %d hits", model.Calls()-calls, cache.Hits.Load())
	}
	req := llm.Request{Messages: []llm.Message{{Role: "user", Content: "x"}}}
	cache.Wrap(client, "one endpoint").Complete(context.Background(), req)
	cache.Wrap(client, "another endpoint").Complete(context.Background(), req)
	if model.Calls() != calls+2 {
		t.Errorf("two salts shared an answer: %d calls", model.Calls()-calls)
	}
}
