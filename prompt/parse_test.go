package prompt_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/prompt"
)

func f(v float64) *float64 { return &v }

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		format  kommbridge.ReplyFormat
		content string
		calls   []llm.ToolCall
		want    prompt.Parsed
	}{
		{"contract", kommbridge.FormatJSONSchema, `{"reply":"Hi.","confidence":0.8,"handoff":false,"handoff_reason":"","team":"","suggested_replies":["A"," ","B"]}`,
			nil, prompt.Parsed{Text: "Hi.", Confidence: f(0.8), Suggested: []string{"A", "B"}}},
		{"handoff flag", kommbridge.FormatJSONSchema, `{"reply":"Connecting you.","confidence":0.9,"handoff":true,"handoff_reason":"refund","team":"billing","suggested_replies":[]}`,
			nil, prompt.Parsed{Text: "Connecting you.", Confidence: f(0.9), Handoff: true, HandoffReason: "refund", Team: "billing"}},
		{"absent confidence is no signal", kommbridge.FormatJSONObject, `{"reply":"Hi."}`, nil, prompt.Parsed{Text: "Hi."}},
		{"lenient types", kommbridge.FormatJSONObject, `{"reply":"Hi.","confidence":"0.4","handoff":"true"}`, nil, prompt.Parsed{Text: "Hi.", Confidence: f(0.4), Handoff: true}},
		{"confidence clamped", kommbridge.FormatJSONObject, `{"reply":"Hi.","confidence":7}`, nil, prompt.Parsed{Text: "Hi.", Confidence: f(1)}},
		{"plain text", kommbridge.FormatJSONSchema, "Just text.", nil, prompt.Parsed{Text: "Just text.", Violation: prompt.ViolationNotJSON}},
		{"code fence", kommbridge.FormatJSONObject, "```json\n{\"reply\":\"Fenced.\"}\n```", nil, prompt.Parsed{Text: "Fenced.", Violation: prompt.ViolationCodeFence}},
		{"text before", kommbridge.FormatJSONObject, `Sure! {"reply":"Inner."}`, nil, prompt.Parsed{Text: "Inner.", Violation: prompt.ViolationExtraText}},
		{"text after", kommbridge.FormatJSONObject, `{"reply":"Inner."} hope that helps`, nil, prompt.Parsed{Text: "Inner.", Violation: prompt.ViolationExtraText}},
		{"truncated", kommbridge.FormatJSONSchema, `{"reply":"Half a sent`, nil, prompt.Parsed{Text: "Half a sent", Violation: prompt.ViolationInvalidJSON}},
		{"truncated in an escape", kommbridge.FormatJSONSchema, `{"reply":"Say \"hi\" and \u00`, nil, prompt.Parsed{Text: `Say "hi" and`, Violation: prompt.ViolationInvalidJSON}},
		{"text format hides a bare object", kommbridge.FormatText, `{"answer": 1}`, nil, prompt.Parsed{Violation: prompt.ViolationMissingFields}},
		{"other field name", kommbridge.FormatJSONObject, `{"answer":"Via answer."}`, nil, prompt.Parsed{Text: "Via answer.", Violation: prompt.ViolationMissingFields}},
		{"no text at all", kommbridge.FormatJSONObject, `{"confidence":1}`, nil, prompt.Parsed{Confidence: f(1), Violation: prompt.ViolationMissingFields}},
		{"empty", kommbridge.FormatJSONSchema, ``, nil, prompt.Parsed{Violation: prompt.ViolationNotJSON}},
		{"marker", kommbridge.FormatText, "A teammate will join. [HANDOFF]", nil, prompt.Parsed{Text: "A teammate will join.", Handoff: true}},
		{"marker alone", kommbridge.FormatText, "[HANDOFF]", nil, prompt.Parsed{Handoff: true}},
		{"text format unwraps a contract object", kommbridge.FormatText, `{"reply":"Unwrapped."}`, nil, prompt.Parsed{Text: "Unwrapped."}},
		{"tool call with text", kommbridge.FormatTools, "Connecting you.", []llm.ToolCall{{Name: "handoff_to_human", Arguments: `{"reason":"angry","team":"billing"}`}},
			prompt.Parsed{Text: "Connecting you.", Handoff: true, HandoffReason: "angry", Team: "billing"}},
		{"tool call without text", kommbridge.FormatTools, "", []llm.ToolCall{{Name: "handoff_to_human", Arguments: `{"reason":"asked"}`}},
			prompt.Parsed{Handoff: true, HandoffReason: "asked"}},
		{"tool call with broken arguments", kommbridge.FormatTools, "", []llm.ToolCall{{Name: "handoff_to_human", Arguments: `{"reason": "cut`}},
			prompt.Parsed{Handoff: true, Violation: prompt.ViolationBadToolArgs}},
		{"double-encoded reply", kommbridge.FormatJSONSchema, `{"reply":"{\"reply\":\"Inside.\",\"confidence\":0.3,\"suggested_replies\":[\"A\"]}","confidence":0.9}`,
			nil, prompt.Parsed{Text: "Inside.", Confidence: f(0.9), Suggested: []string{"A"}, Violation: prompt.ViolationDoubleEncoded}},
		{"double-encoded, fenced", kommbridge.FormatJSONObject, "{\"reply\":\"```json\\n{\\\"reply\\\":\\\"Fenced inside.\\\"}\\n```\"}",
			nil, prompt.Parsed{Text: "Fenced inside.", Violation: prompt.ViolationDoubleEncoded}},
		{"a reply that is some other object", kommbridge.FormatJSONSchema, `{"reply":"{\"order\": 42}"}`, nil, prompt.Parsed{Violation: prompt.ViolationDoubleEncoded}},
		{"marker in a json format does not hand off", kommbridge.FormatJSONSchema, `{"reply":"Noted. [HANDOFF]"}`, nil, prompt.Parsed{Text: "Noted.", Violation: prompt.ViolationStrayMarker}},
		{"marker next to a tool format", kommbridge.FormatTools, "Sure [HANDOFF]", nil, prompt.Parsed{Text: "Sure", Violation: prompt.ViolationStrayMarker}},
		{"resolved in a json format", kommbridge.FormatJSONSchema, `{"reply":"Glad it works now!","confidence":0.9,"resolved":true}`, nil, prompt.Parsed{Text: "Glad it works now!", Confidence: f(0.9), Resolved: true}},
		{"resolved as a tool call", kommbridge.FormatTools, "Glad it works now!", []llm.ToolCall{{Name: "resolve_conversation", Arguments: `{}`}}, prompt.Parsed{Text: "Glad it works now!", Resolved: true}},
		{"resolved as a marker", kommbridge.FormatText, "Glad it works now! [RESOLVED]", nil, prompt.Parsed{Text: "Glad it works now!", Resolved: true}},
		{"the resolved marker elsewhere is only removed", kommbridge.FormatJSONObject, `{"reply":"Done. [RESOLVED]"}`, nil, prompt.Parsed{Text: "Done."}},
		{"rich parts in a json format", kommbridge.FormatJSONSchema,
			`{"reply":"Two plans:","confidence":0.9,"cards":[{"title":"Pro","subtitle":"$10","image_url":"https://a.example/p.png","buttons":[{"label":"Buy","url":"https://a.example/buy","reply":""},{"label":"More","url":"","reply":"Tell me more"}]}],` +
				`"list":{"header":"Or pick","items":[{"title":"Track","description":"","reply":"Track my order"}]},"images":[{"url":"https://a.example/1.png","caption":"One"}],"form":"contact","request_file":true}`,
			nil, prompt.Parsed{Text: "Two plans:", Confidence: f(0.9),
				Cards:  []kommbridge.Card{{Title: "Pro", Subtitle: "$10", ImageURL: "https://a.example/p.png", Buttons: []kommbridge.Button{{Name: "Buy", URL: "https://a.example/buy"}, {Name: "More", Reply: "Tell me more"}}}},
				List:   &kommbridge.List{Header: "Or pick", Items: []kommbridge.ListItem{{Title: "Track", Reply: "Track my order"}}},
				Images: []kommbridge.Image{{URL: "https://a.example/1.png", Caption: "One"}}, Form: "contact", AskFile: true}},
		{"an empty list is no list", kommbridge.FormatJSONSchema, `{"reply":"Hi.","list":{"header":"","items":[]},"cards":[],"images":[]}`, nil, prompt.Parsed{Text: "Hi."}},
		{"rich parts of the wrong shape", kommbridge.FormatJSONObject, `{"reply":"Hi.","cards":"a card","images":[{"url":"https://a.example/1.png"}]}`,
			nil, prompt.Parsed{Text: "Hi.", Images: []kommbridge.Image{{URL: "https://a.example/1.png"}}, Violation: prompt.ViolationBadRich}},
		{"rich parts as tool calls", kommbridge.FormatTools, "Here:", []llm.ToolCall{
			{Name: "show_cards", Arguments: `{"cards":[{"title":"Pro","buttons":[{"name":"More","message":"More please"}]}]}`},
			{Name: "show_list", Arguments: `{"header":"Pick","items":[{"title":"A"}]}`},
			{Name: "show_images", Arguments: `{"images":[{"url":"https://a.example/1.png"}]}`},
			{Name: "show_form", Arguments: `{"name":"contact"}`},
			{Name: "request_file", Arguments: `{}`}},
			prompt.Parsed{Text: "Here:", Cards: []kommbridge.Card{{Title: "Pro", Buttons: []kommbridge.Button{{Name: "More", Reply: "More please"}}}},
				List: &kommbridge.List{Header: "Pick", Items: []kommbridge.ListItem{{Title: "A"}}}, Images: []kommbridge.Image{{URL: "https://a.example/1.png"}}, Form: "contact", AskFile: true}},
		{"a broken rich tool call", kommbridge.FormatTools, "Here:", []llm.ToolCall{{Name: "show_cards", Arguments: `{"cards": 3}`}},
			prompt.Parsed{Text: "Here:", Violation: prompt.ViolationBadRich}},
		{"form and file markers", kommbridge.FormatText, "Please leave your email. [FORM:contact] [ATTACH]", nil, prompt.Parsed{Text: "Please leave your email.", Form: "contact", AskFile: true}},
		{"markers elsewhere are only removed", kommbridge.FormatJSONObject, `{"reply":"Email? [FORM:contact] [ATTACH]"}`, nil, prompt.Parsed{Text: "Email?"}},
		{"unknown tool", kommbridge.FormatTools, "Hello.", []llm.ToolCall{{Name: "search", Arguments: `{}`}}, prompt.Parsed{Text: "Hello.", Violation: prompt.ViolationUnknownTool}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := prompt.Parse(tt.format, llm.Response{Content: tt.content, ToolCalls: tt.calls})
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParse: whatever the model says, the user never sees a JSON object
// or the marker, and Parse never panics.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{"reply":"x"}`, "```json\n{}\n```", `{"reply":"a`, "plain [HANDOFF]", `{"answer": 1}`, `{"reply": "\ud800"}`,
		`{"reply": "{\"reply\": \"x\"}"}`, `{"reply": "{\"a\": 1}"}`, `{"reply": "{\"reply\": \"{\\\"reply\\\": 1}\"}"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, format := range []kommbridge.ReplyFormat{kommbridge.FormatJSONSchema, kommbridge.FormatText} {
			p := prompt.Parse(format, llm.Response{Content: s})
			if t2 := strings.TrimSpace(p.Text); strings.HasPrefix(t2, "{") && json.Valid([]byte(t2)) {
				t.Errorf("%s: a JSON object is shown: %q", format, p.Text)
			}
			if contains(p.Text, prompt.HandoffMarker) {
				t.Errorf("marker shown: %q", p.Text)
			}
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
