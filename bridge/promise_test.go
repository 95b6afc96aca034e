package bridge

import (
	"testing"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/prompt"
)

// A reply that says a person will take over while it does not hand off is
// caught in every reply format, in the bot's languages and without regard
// to accents, and kept (a real handoff), stripped or left as the bot says.
func TestFalsePromise(t *testing.T) {
	handoffCall := llm.ToolCall{ID: "c", Name: prompt.HandoffTool, Arguments: `{"reason":"asked"}`}
	for _, tt := range []struct {
		format kommbridge.ReplyFormat
		resp   llm.Response
		// promised: a false promise; the rest hand off for real, or promise nothing
		promised bool
	}{
		{kommbridge.FormatJSONSchema, llm.Response{Content: `{"reply":"I'll transfer you to a colleague now.","confidence":0.9,"handoff":false,"handoff_reason":"","team":"","suggested_replies":[]}`}, true},
		{kommbridge.FormatJSONSchema, llm.Response{Content: `{"reply":"I'll transfer you to a colleague now.","confidence":0.9,"handoff":true,"handoff_reason":"asked","team":"","suggested_replies":[]}`}, false},
		{kommbridge.FormatJSONObject, llm.Response{Content: `{"reply":"Un compañero te escribirá pronto.","confidence":0.9,"handoff":false,"handoff_reason":"","team":"","suggested_replies":[]}`}, true},
		{kommbridge.FormatTools, llm.Response{Content: "Je vous transfère à un conseiller."}, true},
		{kommbridge.FormatTools, llm.Response{Content: "Je vous transfère à un conseiller.", ToolCalls: []llm.ToolCall{handoffCall}}, false},
		{kommbridge.FormatText, llm.Response{Content: "Ein Kollege wird sich gleich melden."}, true},
		{kommbridge.FormatText, llm.Response{Content: "Ein Kollege wird sich gleich melden. [HANDOFF]"}, false},
		{kommbridge.FormatText, llm.Response{Content: "Your order shipped; our team will get back to the carrier."}, false},
	} {
		parsed := prompt.Parse(tt.format, tt.resp)
		in := Input{Event: &kommbridge.Event{BotID: "bot", Text: "x"}, Now: now, Asked: true, UserTurn: "x", Reply: parsed}
		for _, policy := range []string{"handoff", "strip", "allow"} {
			p := profile(t, func(p *Profile) {
				p.Format = tt.format
				p.PromiseHandoff, p.PromiseStrip = policy == "handoff", policy == "strip"
				for _, ph := range []string{"transfer you", "un compañero te", "je vous transfère", "ein kollege wird"} {
					p.promises = append(p.promises, words(ph))
				}
			})
			d := decide(p, in)
			if d.Promised != tt.promised {
				t.Errorf("%s %q (%s): promised %v", tt.format, tt.resp.Content, policy, d.Promised)
				continue
			}
			if !tt.promised {
				continue
			}
			switch policy {
			case "handoff":
				if d.HandoffReason != kommbridge.HandoffPromise || d.Messages[0].Handoff == nil || d.Messages[0].Text != parsed.Text || !d.MarkHandoff {
					t.Errorf("%s: kept: %+v", tt.format, d)
				}
			case "strip":
				if d.HandoffReason != "" || d.Messages[0].Text != "Is there anything else I can help you with?" {
					t.Errorf("%s: stripped: %+v", tt.format, d.Messages)
				}
			case "allow":
				if d.HandoffReason != "" || d.Messages[0].Text != parsed.Text {
					t.Errorf("%s: allowed: %+v", tt.format, d.Messages)
				}
			}
		}
	}
	// Strip keeps the sentences that promise nothing.
	p := profile(t, func(p *Profile) { p.PromiseStrip, p.promises = true, [][]string{words("a colleague will")} })
	d := decide(p, Input{Event: &kommbridge.Event{BotID: "bot", Text: "x"}, Now: now, Asked: true, UserTurn: "x",
		Reply: prompt.Parsed{Text: "Refunds take 5 days. A colleague will check your case! Anything else?"}})
	if d.Messages[0].Text != "Refunds take 5 days. Anything else?" {
		t.Errorf("strip: %q", d.Messages[0].Text)
	}
}
