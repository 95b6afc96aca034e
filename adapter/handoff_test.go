package adapter_test

import (
	"fmt"
	"strings"
	"testing"

	openai "github.com/sashabaranov/go-openai"

	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// botsWith is the bots section of a "*" bot answering in format, with
// more keys of the bot and of its handoff section, one "key: value" each.
func botsWith(format string, bot, handoff []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nbots:\n  - id: \"*\"\n    system_prompt: \"You are ACME's assistant.\"\n    reply_format: %s\n", format)
	for _, kv := range bot {
		fmt.Fprintf(&b, "    %s\n", kv)
	}
	b.WriteString("    handoff:\n      min_confidence: 0.5\n      teams: {billing: \"2841\"}\n      phrases: [\"talk to a human\", \"real person\", \"agente humano\"]\n")
	for _, kv := range handoff {
		fmt.Fprintf(&b, "      %s\n", kv)
	}
	return b.String()
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
				h := newHarness(t, botsWith(format, nil, nil), "")
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
			h := newHarness(t, botsWith(format, nil, nil), "")
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

// The wire shape of a handoff with the model's words, an assignee, a
// team and a templated message.
func TestIncludeReplyAssigneeAndTemplate(t *testing.T) {
	bots := botsWith("json_schema", nil, []string{"include_reply: true", "assign_to: agent@example.com",
		`message: "Hang on{{with .Context.name}} {{.}}{{end}}, a teammate is coming."`})
	h := newHarness(t, bots, "")
	h.model.Enqueue(llmtest.Reply{Content: contract("I can't see refunds.", 0.9, true, "billing")})
	got := string(h.postRaw(`{"botId":"b","groupId":1,"message":"refund?","metadata":{"KM_CHAT_CONTEXT":{"name":"Asha"}}}`))
	want := `[{"message":"I can't see refunds."},{"message":"Hang on Asha, a teammate is coming.","metadata":{"KM_ASSIGN_TO":"agent@example.com","KM_ASSIGN_TEAM":"2841"}}]`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestQuickRepliesAndLinks(t *testing.T) {
	bots := botsWith("json_schema", []string{"link_buttons: true", "suggested_replies: {max: 2}"}, nil)
	h := newHarness(t, bots, "")
	h.model.Enqueue(
		llmtest.Reply{Content: `{"reply":"See https://acme.example/help/returns.","confidence":0.9,"suggested_replies":["Start a return for my order please","Track","Track","Other"]}`},
		llmtest.Reply{Content: `{"reply":"Read https://acme.example/faq","confidence":0.9,"suggested_replies":[]}`},
	)
	golden(t, "answer_mixed_buttons.golden", h.postRaw(msg("returns?")))
	golden(t, "answer_link_buttons.golden", h.postRaw(msg("faq?")))
}

// A bot with resolve: auto closes a conversation the model says is solved,
// in each format; the exact JSON is pinned. The request asks for the
// signal: the schema's "resolved" field, the resolve_conversation tool, or
// the marker's instruction.
func TestResolve(t *testing.T) {
	for _, tt := range []struct {
		format string
		reply  llmtest.Reply
		asks   func(llmtest.Request) bool
	}{
		{"json_schema", llmtest.Reply{Content: `{"reply":"Glad it works now!","confidence":0.9,"handoff":false,"handoff_reason":"","team":"","suggested_replies":[],"resolved":true}`},
			func(r llmtest.Request) bool { return strings.Contains(string(r.Body), `"resolved":{"type":"boolean"`) }},
		{"tools", llmtest.Reply{Content: "Glad it works now!", ToolCalls: []openai.ToolCall{{ID: "1", Type: "function", Function: openai.FunctionCall{Name: "resolve_conversation", Arguments: "{}"}}}},
			func(r llmtest.Request) bool {
				return len(r.Chat.Tools) == 2 && r.Chat.Tools[1].Function.Name == "resolve_conversation"
			}},
		{"text", llmtest.Reply{Content: "Glad it works now! [RESOLVED]"},
			func(r llmtest.Request) bool { return strings.Contains(r.Chat.Messages[0].Content, "[RESOLVED]") }},
	} {
		t.Run(tt.format, func(t *testing.T) {
			h := newHarness(t, botsWith(tt.format, []string{"resolve: auto"}, nil), "")
			h.model.Enqueue(tt.reply)
			golden(t, "resolve_"+tt.format+".golden", h.postRaw(msg("it works now, thanks")))
			if !tt.asks(h.model.Last(t)) {
				t.Errorf("the request does not ask for the resolved signal")
			}
		})
	}
}
