package adapter_test

import (
	"fmt"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/kommbridge/kommbridge/llm/llmtest"
)

func botsWith(format, extra string) string {
	return fmt.Sprintf(`
bots:
  - id: "*"
    system_prompt: "You are ACME's assistant."
    reply_format: %s
    handoff:
      min_confidence: 0.5
      teams: {billing: "2841"}
      phrases: ["talk to a human", "real person", "agente humano"]
%s`, format, extra)
}

func contract(reply string, confidence float64, handoff bool, team string) string {
	return fmt.Sprintf(`{"reply":%q,"confidence":%g,"handoff":%v,"handoff_reason":"asked","team":%q,"suggested_replies":[]}`, reply, confidence, handoff, team)
}

// Each format, each handoff signal, and malformed output: the exact JSON
// Kommunicate gets is pinned in testdata/handoff_*.golden.
func TestHandoffByFormat(t *testing.T) {
	type tc struct {
		name  string
		reply llmtest.Reply
	}
	formats := map[string][]tc{
		"json_schema": {
			{"answer", llmtest.Reply{Content: contract("Your order shipped.", 0.9, false, "")}},
			{"flag", llmtest.Reply{Content: contract("Connecting you.", 0.9, true, "")}},
			{"low_confidence", llmtest.Reply{Content: contract("Maybe Tuesday?", 0.2, false, "")}},
			{"known_team", llmtest.Reply{Content: contract("Billing will help.", 0.9, true, "billing")}},
			{"unknown_team", llmtest.Reply{Content: contract("Sales will help.", 0.9, true, "sales")}},
			{"text_not_json", llmtest.Reply{Content: "Your order shipped."}},
			{"code_fence", llmtest.Reply{Content: "```json\n" + contract("Fenced answer.", 0.9, false, "") + "\n```"}},
			{"truncated", llmtest.Reply{Content: `{"reply":"Your order ship`}},
		},
		"json_object": {
			{"answer", llmtest.Reply{Content: contract("Your order shipped.", 0.9, false, "")}},
			{"flag", llmtest.Reply{Content: contract("Connecting you.", 0.9, true, "")}},
			{"low_confidence", llmtest.Reply{Content: contract("Maybe Tuesday?", 0.2, false, "")}},
			{"no_confidence", llmtest.Reply{Content: `{"reply":"No confidence given."}`}},
			{"known_team", llmtest.Reply{Content: contract("Billing will help.", 0.9, true, "billing")}},
		},
		"tools": {
			{"answer", llmtest.Reply{Content: "Your order shipped."}},
			{"call_with_text", llmtest.Reply{Content: "A teammate will join.", ToolCalls: []openai.ToolCall{llmtest.HandoffCall(`{"reason":"refund","team":"billing"}`)}}},
			{"call_without_text", llmtest.Reply{ToolCalls: []openai.ToolCall{llmtest.HandoffCall(`{"reason":"refund"}`)}}},
			{"call_broken_args", llmtest.Reply{ToolCalls: []openai.ToolCall{llmtest.HandoffCall(`{"reason": "cut`)}}},
			{"call_unknown_team", llmtest.Reply{ToolCalls: []openai.ToolCall{llmtest.HandoffCall(`{"reason":"x","team":"sales"}`)}}},
		},
		"text": {
			{"answer", llmtest.Reply{Content: "Your order shipped."}},
			{"marker", llmtest.Reply{Content: "A teammate will join you shortly. [HANDOFF]"}},
			{"marker_only", llmtest.Reply{Content: "[HANDOFF]"}},
		},
	}
	for format, cases := range formats {
		for _, c := range cases {
			t.Run(format+"/"+c.name, func(t *testing.T) {
				h := newHarness(t, botsWith(format, ""), "")
				h.model.Enqueue(c.reply)
				got := h.postRaw(msg("Where is my refund?"))
				golden(t, "handoff_"+format+"_"+c.name+".golden", got)
				for _, bad := range []string{"[HANDOFF]", `\"reply\"`, "handoff_to_human", "sales"} {
					if strings.Contains(string(got), bad) {
						t.Errorf("the user would see %s: %s", bad, got)
					}
				}
			})
		}
	}
}

func TestRequestPerFormat(t *testing.T) {
	for _, format := range []string{"json_schema", "json_object", "tools", "text"} {
		t.Run(format, func(t *testing.T) {
			h := newHarness(t, botsWith(format, ""), "")
			h.post(msg("hi"))
			r := h.model.Last(t).Chat
			rf := ""
			if r.ResponseFormat != nil {
				rf = string(r.ResponseFormat.Type)
			}
			wantRF := map[string]string{"json_schema": "json_schema", "json_object": "json_object"}[format]
			if rf != wantRF {
				t.Errorf("response_format %q, want %q", rf, wantRF)
			}
			if (format == "tools") != (len(r.Tools) == 1) {
				t.Errorf("tools %v", r.Tools)
			}
			sys := r.Messages[0].Content
			want := map[string]string{"json_schema": `"handoff": true when`, "json_object": "Answer with one JSON object and nothing else", "tools": "call the function handoff_to_human", "text": "put [HANDOFF] at the end"}[format]
			if !strings.HasPrefix(sys, "You are ACME's assistant.\n\n## How to answer") || !strings.Contains(sys, want) {
				t.Errorf("system prompt lacks the %s instructions:\n%s", format, sys)
			}
		})
	}
}

// A request for a person hands off without asking the model.
func TestUserAsksForAPerson(t *testing.T) {
	for _, text := range []string{
		"I want to TALK to a human!",
		"real person please",
		"Quiero un agénte humano",
	} {
		h := newHarness(t, botsWith("json_schema", ""), "")
		got := h.postRaw(msg(text))
		if string(got) != `[{"message":"Let me connect you with a teammate.","metadata":{"KM_ASSIGN_TO":""}}]` {
			t.Errorf("%q: %s", text, got)
		}
		if h.model.Calls() != 0 {
			t.Errorf("%q: model called", text)
		}
	}
	h := newHarness(t, botsWith("json_schema", ""), "")
	h.model.Enqueue(llmtest.Reply{Content: contract("Our staff are real people.", 0.9, false, "")})
	if got := texts(h.post(msg("are you a realperson"))); got[0] != "Our staff are real people." {
		t.Errorf("phrase matched inside a word: %v", got)
	}
}

func TestErrorPolicy(t *testing.T) {
	tests := []struct {
		name, extra, budget string
		reply               llmtest.Reply
		want                string
	}{
		{"500 hands off", "", "", llmtest.Reply{Status: 500},
			`[{"message":"Sorry, I'm having trouble answering right now."},{"message":"Let me connect you with a teammate.","metadata":{"KM_ASSIGN_TO":""}}]`},
		{"timeout hands off", "", "500ms", llmtest.Reply{Hang: true},
			`[{"message":"Sorry, I'm having trouble answering right now."},{"message":"Let me connect you with a teammate.","metadata":{"KM_ASSIGN_TO":""}}]`},
		{"message policy", "    on_error_policy: x\n", "", llmtest.Reply{Status: 500},
			`[{"message":"Sorry, I'm having trouble answering right now."}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bots := botsWith("json_schema", "")
			if strings.Contains(tt.extra, "on_error_policy") {
				bots = strings.Replace(bots, "min_confidence: 0.5", "min_confidence: 0.5\n      on_error: message", 1)
			}
			h := newHarness(t, bots, tt.budget)
			h.model.Default(func(llmtest.Request) llmtest.Reply { return tt.reply })
			if got := string(h.postRaw(msg("hello"))); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestIncludeReplyAssigneeAndTemplate(t *testing.T) {
	bots := strings.Replace(botsWith("json_schema", ""), "min_confidence: 0.5",
		"min_confidence: 0.5\n      include_reply: true\n      assign_to: agent@example.com\n      message: \"Hang on{{with .Context.name}} {{.}}{{end}}, a teammate is coming.\"", 1)
	h := newHarness(t, bots, "")
	h.model.Enqueue(llmtest.Reply{Content: contract("I can't see refunds.", 0.9, true, "billing")})
	got := string(h.postRaw(`{"botId":"b","groupId":1,"message":"refund?","metadata":{"KM_CHAT_CONTEXT":{"name":"Asha"}}}`))
	want := `[{"message":"I can't see refunds."},{"message":"Hang on Asha, a teammate is coming.","metadata":{"KM_ASSIGN_TO":"agent@example.com","KM_ASSIGN_TEAM":"2841"}}]`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// After a handoff: "answer" keeps answering without assigning twice within
// the cooldown; "silent" answers nothing.
func TestAfterHandoff(t *testing.T) {
	h := newHarness(t, botsWith("json_schema", ""), "")
	h.model.Enqueue(
		llmtest.Reply{Content: contract("Connecting you.", 0.9, true, "")},
		llmtest.Reply{Content: contract("Still here to help.", 0.9, false, "")},
		llmtest.Reply{Content: contract("Connecting you again.", 0.9, true, "")},
	)
	first := string(h.postRaw(msg("refund")))
	if !strings.Contains(first, "KM_ASSIGN_TO") {
		t.Fatalf("first handoff not assigned: %s", first)
	}
	if got := texts(h.post(msg("anyone?"))); got[0] != "Still here to help." {
		t.Errorf("after: answer did not answer: %v", got)
	}
	if again := string(h.postRaw(msg("please"))); strings.Contains(again, "KM_ASSIGN_TO") {
		t.Errorf("second handoff inside the cooldown assigned again: %s", again)
	}

	silent := newHarness(t, strings.Replace(botsWith("json_schema", ""), "min_confidence: 0.5", "min_confidence: 0.5\n      after: silent", 1), "")
	silent.model.Enqueue(llmtest.Reply{Content: contract("Connecting you.", 0.9, true, "")})
	silent.post(msg("refund"))
	if got := string(silent.postRaw(msg("hello?"))); got != "[]" {
		t.Errorf("after: silent answered %s", got)
	}
	if silent.model.Calls() != 1 {
		t.Errorf("after: silent called the model %d times, want 1", silent.model.Calls())
	}
	// A new conversation (WELCOME) clears the mark.
	silent.model.Enqueue(llmtest.Reply{Content: contract("Hello again.", 0.9, false, "")})
	silent.post(`{"botId":"support-bot","groupId":1001,"eventName":"WELCOME","message":""}`)
	if got := texts(silent.post(msg("back"))); len(got) != 1 || got[0] != "Hello again." {
		t.Errorf("after WELCOME: %v", got)
	}
}

func TestTokenConfidence(t *testing.T) {
	bots := strings.Replace(botsWith("text", ""), "min_confidence: 0.5", "min_confidence: 0.5\n      min_token_confidence: 0.6", 1)
	h := newHarness(t, bots, "")
	h.model.Enqueue(
		llmtest.Reply{Content: "Sure thing", LogProbs: []float64{-0.01, -0.02}},  // p ~ 0.98
		llmtest.Reply{Content: "Perhaps maybe", LogProbs: []float64{-2.0, -1.5}}, // p ~ 0.18
		llmtest.Reply{Content: "No logprobs here"},
	)
	if got := texts(h.post(msg("a"))); got[0] != "Sure thing" {
		t.Errorf("confident: %v", got)
	}
	if !h.model.Last(t).Chat.LogProbs {
		t.Error("logprobs not requested")
	}
	if got := string(h.postRaw(msg("b"))); !strings.Contains(got, "KM_ASSIGN_TO") {
		t.Errorf("unsure tokens did not hand off: %s", got)
	}
	if got := texts(h.post(msg("c"))); got[0] != "No logprobs here" {
		t.Errorf("no logprobs: %v", got)
	}
}

func TestQuickRepliesAndLinks(t *testing.T) {
	bots := strings.Replace(botsWith("json_schema", ""), "reply_format: json_schema", "reply_format: json_schema\n    link_buttons: true\n    suggested_replies: {max: 2}", 1)
	h := newHarness(t, bots, "")
	h.model.Enqueue(
		llmtest.Reply{Content: `{"reply":"See https://acme.example/help/returns.","confidence":0.9,"suggested_replies":["Start a return for my order please","Track","Track","Other"]}`},
		llmtest.Reply{Content: `{"reply":"Read https://acme.example/faq","confidence":0.9,"suggested_replies":[]}`},
	)
	golden(t, "answer_mixed_buttons.golden", h.postRaw(msg("returns?")))
	golden(t, "answer_link_buttons.golden", h.postRaw(msg("faq?")))
}
