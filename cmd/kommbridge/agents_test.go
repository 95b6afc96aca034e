package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge/llm/llmtest"
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
