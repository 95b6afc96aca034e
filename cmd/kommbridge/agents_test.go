package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge/llm/llmtest"
	"github.com/kommbridge/kommbridge/store/redis/redistest"
)

// agentConfig is a bot that hands off on a phrase and posts handoff notes
// through api (summary on when summary is set).
func agentConfig(t *testing.T, fake *llmtest.Server, api *fakeKommunicate, summary string) string {
	return writeConfig(t, fmt.Sprintf(`
server: {addr: "127.0.0.1:0"}
llm: {base_url: %q, api_key: k, max_retries: 0}
log: {level: info, content: true}
kommunicate: {api_base: %q, api_key: km-secret}
bots:
  - id: "*"
    system_prompt: "You are ACME's assistant."
    handoff:
      phrases: ["talk to a human"]
      %s
`, fake.URL(), api.URL, summary))
}

// noteModel answers the handoff note's request with a summary (after
// delay), and anything else with an answer.
func noteModel(t *testing.T, delay time.Duration) *llmtest.Server {
	fake := llmtest.New(t)
	fake.Default(func(r llmtest.Request) llmtest.Reply {
		if r.Chat.ResponseFormat != nil && r.Chat.ResponseFormat.JSONSchema != nil && r.Chat.ResponseFormat.JSONSchema.Name == "handoff_note" {
			return llmtest.Reply{Delay: delay, Content: `{"intent":"wants a refund for a leaking tent","tried":"explained the 30-day returns","facts":["order 1234","bought in October"],"open_question":"will shipping be refunded?","sentiment":"upset"}`}
		}
		return llmtest.Reply{Content: llmtest.Contract("Tents can be returned within 30 days.", 0.9)}
	})
	return fake
}

// On a handoff, the agent gets a note in the conversation, hidden from
// the user's widget: what kommbridge knows and what the model read in
// the transcript. The handoff answer is the same, byte for byte, with
// notes on or off.
func TestHandoffNote(t *testing.T) {
	answers := map[bool]string{}
	for _, on := range []bool{false, true} {
		fake, api := noteModel(t, 0), newFakeKommunicate(t)
		summary := ""
		if on {
			summary = "summary: {enabled: true, max_words: 60}"
		}
		p := startProcess(t, agentConfig(t, fake, api, summary), env(nil))
		post(t, p.base, webhookBody("k1", "c-1", "My tent leaks, order 1234, I want my money back", nil))
		answers[on] = post(t, p.base, webhookBody("k2", "c-1", "talk to a human please", nil))
		if !on {
			continue
		}
		select {
		case c := <-api.got:
			md, _ := c.Body["metadata"].(map[string]any)
			text, _ := c.Body["message"].(string)
			t.Logf("the note:\n%s", text)
			if c.Body["groupId"] != "c-1" || md["category"] != "HIDDEN" || md["KM_ASSIGN_TO"] != nil {
				t.Errorf("note post %+v", c.Body)
			}
			for _, want := range []string{"Reason: asked for a person", "2 messages from the user", "Intent: wants a refund for a leaking tent",
				"Facts: order 1234; bought in October", "Sentiment: upset", "Last message: talk to a human please"} {
				if !strings.Contains(text, want) {
					t.Errorf("note lacks %q:\n%s", want, text)
				}
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no note posted")
		}
		p.stderr.waitFor(t, `"result":"posted"`, 0)
		if m := get(t, p.base+"/metrics"); !strings.Contains(m, `kommbridge_handoff_notes_total{result="posted"} 1`) {
			t.Errorf("metrics: %s", grepLines(m, "handoff_notes"))
		}
	}
	if answers[true] != answers[false] || !strings.Contains(answers[true], `"KM_ASSIGN_TO":""`) {
		t.Errorf("the handoff answer changed with notes on:\n on %s\noff %s", answers[true], answers[false])
	}
}

// A summary model that hangs costs the note its summary, not the note:
// what kommbridge knows is posted once the summary's time is up.
func TestHandoffNoteWithoutTheModel(t *testing.T) {
	fake, api := noteModel(t, time.Minute), newFakeKommunicate(t)
	p := startProcess(t, agentConfig(t, fake, api, "summary: {enabled: true, timeout: 300ms}"), env(nil))
	post(t, p.base, webhookBody("k1", "c-9", "talk to a human", nil))
	select {
	case c := <-api.got:
		text, _ := c.Body["message"].(string)
		if !strings.Contains(text, "Reason: asked for a person") || !strings.Contains(text, "(No summary: the model did not write one in time.)") {
			t.Errorf("note:\n%s", text)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no note posted")
	}
	p.stderr.waitFor(t, `"result":"posted_known_only"`, 0)
}

// Card numbers that pass the Luhn check reach no model request, no
// history and no log line, even with log.content on; other numbers stay.
func TestCardNumbersMasked(t *testing.T) {
	fake, api := noteModel(t, 0), newFakeKommunicate(t)
	p := startProcess(t, agentConfig(t, fake, api, ""), env(nil))
	cards := []string{"4242 4242 4242 4242", "4111-1111-1111-1111", "378282246310005", "5555555555554444"}
	msg := "Charge my card " + cards[0] + " or " + cards[1] + " or " + cards[2] + ", not order 4242424242424241"
	md := map[string]any{"KM_CHAT_CONTEXT": map[string]any{"backup_card": cards[3]}}
	post(t, p.base, webhookBody("k1", "c-1", msg, md))
	post(t, p.base, webhookBody("k2", "c-1", "and the other one?", nil))
	p.stderr.waitFor(t, `"key":"k2"`, 0)
	var seen bytes.Buffer
	for _, r := range fake.Requests() {
		seen.Write(r.Body)
	}
	seen.WriteString(p.stderr.text())
	for _, c := range cards {
		compact := strings.NewReplacer(" ", "", "-", "").Replace(c)
		if strings.Contains(seen.String(), c) || strings.Contains(seen.String(), compact) {
			t.Errorf("%s reached a model request or the log", c)
		}
	}
	history := fmt.Sprint(fake.Last(t).Chat.Messages)
	if !strings.Contains(history, "[card ending 4242]") || !strings.Contains(history, "[card ending 0005]") || !strings.Contains(history, "4242424242424241") {
		t.Errorf("history: %s", history)
	}
}

// Each conversation's outcome, as the metric counts it while serving and
// the report tells it after: resolved by the bot (explicitly, or by
// silence after its answer), handed off by category, reopened,
// abandoned.
func TestOutcomesAndReport(t *testing.T) {
	r := redistest.Start(t)
	fake := llmtest.New(t)
	fake.Default(func(req llmtest.Request) llmtest.Reply {
		last := req.Chat.Messages[len(req.Chat.Messages)-1].Content
		switch {
		case strings.Contains(last, "thanks, it works"):
			return llmtest.Reply{Content: `{"reply":"Glad it works!","confidence":0.9,"handoff":false,"handoff_reason":"","team":"","suggested_replies":[],"resolved":true}`}
		case strings.Contains(last, "break"):
			return llmtest.Reply{Status: 500}
		}
		return llmtest.Reply{Content: llmtest.Contract("Sure.", 0.9)}
	})
	path := writeConfig(t, fmt.Sprintf(`
server: {addr: "127.0.0.1:0"}
llm: {base_url: %q, api_key: k, max_retries: 0}
store: {url: %q}
log: {level: info}
bots:
  - id: "*"
    resolve: auto
    welcome: {text: "Hi!"}
    handoff: {phrases: ["talk to a human"]}
`, fake.URL(), r.URL))
	p := startProcess(t, path, env(nil))
	welcome := func(key, conv string) string {
		b, _ := json.Marshal(map[string]any{"botId": "b", "key": key, "groupId": conv, "message": "", "eventName": "WELCOME"})
		return post(t, p.base, string(b))
	}
	post(t, p.base, webhookBody("a1", "A", "hello", nil))           // answered: resolved once the window passes
	post(t, p.base, webhookBody("b1", "B", "talk to a human", nil)) // customer request
	post(t, p.base, webhookBody("c1", "C", "thanks, it works", nil))
	post(t, p.base, webhookBody("c2", "C", "oh wait, one more thing", nil)) // reopened
	welcome("d1", "D")                                                      // abandoned once the window passes
	post(t, p.base, webhookBody("e1", "E", "break it", nil))                // model failure
	// The records are written in the background; each outcome decided is
	// logged.
	for _, o := range []string{"customer_request", "resolved", "reopened", "model_failure"} {
		p.stderr.waitFor(t, `"conversation_outcome":"`+o+`"`, 0)
	}
	m := get(t, p.base+"/metrics")
	for _, want := range []string{`outcome="customer_request"} 1`, `outcome="resolved"} 1`, `outcome="reopened"} 1`, `outcome="model_failure"} 1`} {
		if !strings.Contains(m, `kommbridge_conversations_total{bot="*",`+want) {
			t.Errorf("metric lacks %s:\n%s", want, grepLines(m, "kommbridge_conversations_total"))
		}
	}

	// From the store: inside the window A and D are still open.
	out, err := runCmd(t, "report", "--config", path, "--since", "1h")
	for _, want := range []string{"5 conversations, 4 with a user message", "resolved by the bot             0", "customer request              1",
		"model failure                 1", "reopened after a resolve        1", "still open                      3"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("report lacks %q (%v):\n%s", want, err, out)
		}
	}

	// From the log, two hours on: A and C (its last answer unanswered)
	// are resolved by the bot, D abandoned.
	var shifted []string
	for _, l := range strings.Split(p.stderr.text(), "\n") {
		var line map[string]any
		if json.Unmarshal([]byte(l), &line) != nil {
			continue
		}
		if ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", fmt.Sprint(line["ts"])); err == nil {
			line["ts"] = ts.Add(-2 * time.Hour).Format("2006-01-02T15:04:05.000Z0700")
		}
		b, _ := json.Marshal(line)
		shifted = append(shifted, string(b))
	}
	log := filepath.Join(t.TempDir(), "serve.log")
	os.WriteFile(log, []byte(strings.Join(shifted, "\n")), 0o644)
	out, err = runCmd(t, "report", "--config", path, "--since", "7d", "--log", log)
	t.Logf("the report:\n%s", out)
	for _, want := range []string{"resolved by the bot             2   resolution rate 50%", "handed to people                2",
		"abandoned                       1", "still open                      0"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("report from the log lacks %q (%v):\n%s", want, err, out)
		}
	}
	csvOut, _ := runCmd(t, "report", "--config", path, "--since", "7d", "--log", log, "--csv", "-")
	if !strings.HasPrefix(csvOut, "conversation,bot,started,user_messages,outcome,handoff_at,resolved_at,reopened\n") || !strings.Contains(csvOut, "\nA,b,") {
		t.Errorf("csv:\n%s", csvOut)
	}
}
