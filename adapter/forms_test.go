package adapter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kommbridge/kommbridge/adapter"
	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// orderForm has every field type the widget shows, each required.
const orderForm = `forms: {order: {text: "Your order details, please.", submit: Send, fields: [` +
	`{name: email, label: Email, required: true, regex: "^[^@ ]+@[^@ ]+$", error: "Enter an email address."}, ` +
	`{name: pin, label: Order PIN, type: password, required: true}, ` +
	`{name: topic, label: Topic, type: radio, options: [Billing, Returns], required: true}, ` +
	`{name: extras, label: Extras, type: checkbox, options: [Gift wrap, Express], required: true}, ` +
	`{name: size, label: Size, type: dropdown, options: [S, M, L], required: true, placeholder: "Pick a size"}, ` +
	`{name: note, label: Note, type: textarea, placeholder: "Anything else?"}, ` +
	`{name: src, type: hidden, value: bot}]}}`

// A form as the widget needs it: no validation on a radio (it would move
// the submit out of the form), captions in title for radio, checkbox,
// dropdown and textarea, a required dropdown starting with an empty,
// disabled option.
func TestFormForTheWidget(t *testing.T) {
	h := newHarness(t, botsWith("json_schema", []string{orderForm}, nil), "")
	h.model.Enqueue(llmtest.Reply{Content: `{"reply":"Sure.","confidence":0.9,"handoff":false,"handoff_reason":"","team":"","suggested_replies":[],"form":"order"}`})
	golden(t, "form_all_fields.golden", h.postRaw(msg("cancel my order")))
}

// The post-back of that form: text and password values keyed by their
// labels (as the web widget names those inputs) are read; the model gets
// the fields in order, the password only as "provided"; the PIN reaches
// neither the model, nor the history, nor the log (content logging on),
// and the values fill {{.Context.<name>}}.
func TestFormPostBackByLabel(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	bots := botsWith("json_schema", []string{orderForm}, nil)
	bots = strings.Replace(bots, `system_prompt: "You are ACME's assistant."`, `system_prompt: "You are ACME's assistant.{{with .Context.email}} The user's email is {{.}}.{{end}}"`, 1)
	h := newHarnessWith(t, bots, "", zap.New(core), true)
	h.model.Enqueue(llmtest.Reply{Content: contract("Thanks, I'm on it.", 0.9, false, "")})
	const pin = "8642-secret"
	body := `{"botId":"b","groupId":1,"key":"k1","message":"Send","metadata":{"KM_CHAT_CONTEXT":{"formData":` +
		`{"Email":"asha@example.com","Order PIN":"` + pin + `","topic":"Returns","extras":["Gift wrap"],"size":"M","note":"","src":"bot"},"formMsgKey":"5-1"}}}`
	if got := texts(h.post(body)); len(got) != 1 || got[0] != "Thanks, I'm on it." {
		t.Fatalf("answer %q", got)
	}
	req := h.model.Last(t)
	msgs := req.Chat.Messages
	if got, want := msgs[len(msgs)-1].Content, "(The user filled in the form order.)\nEmail: asha@example.com\nOrder PIN: provided\nTopic: Returns\nExtras: Gift wrap\nSize: M\nNote: (left empty)"; got != want {
		t.Errorf("the model read:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(msgs[0].Content, "The user's email is asha@example.com.") {
		t.Errorf("{{.Context.email}} did not fill: %q", msgs[0].Content[:80])
	}
	if strings.Contains(string(req.Body), pin) {
		t.Errorf("the PIN reached the model")
	}
	turns, err := h.store.History(context.Background(), "b/1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range turns {
		if strings.Contains(tr.Text, pin) {
			t.Errorf("the PIN reached the history: %q", tr.Text)
		}
	}
	for _, e := range logs.All() {
		if b, _ := json.Marshal(e.ContextMap()); strings.Contains(string(b), pin) || strings.Contains(e.Message, pin) {
			t.Errorf("the PIN reached the log: %s %s", e.Message, b)
		}
	}
}

// A required radio, checkbox or dropdown left out is asked for again,
// with the form, without the model; nothing is written to history.
func TestFormIncomplete(t *testing.T) {
	h := newHarness(t, botsWith("json_schema", []string{orderForm}, nil), "")
	body := `{"botId":"b","groupId":1,"key":"k1","message":"Send","metadata":{"KM_CHAT_CONTEXT":{"formData":` +
		`{"Email":"asha@example.com","Order PIN":"1","size":"","note":"","src":"bot"}}}}`
	out := h.post(body)
	if len(out) != 2 || out[0].Message != "Please choose Topic. Please choose Extras. Please choose Size." || out[1].Metadata == nil || out[1].Metadata.TemplateID != "12" {
		t.Fatalf("answer %+v", out)
	}
	if h.model.Calls() != 0 {
		t.Errorf("the model was asked")
	}
	if turns, _ := h.store.History(context.Background(), "b/1"); len(turns) != 0 {
		t.Errorf("history %v", turns)
	}
}

// A handoff's form posts its values as visible text too (the people who
// take over read the conversation, not the bot's post-back).
func TestHandoffFormShowsValues(t *testing.T) {
	h := newHarness(t, botsWith("json_schema", []string{formsYAML}, []string{"form: contact"}), "")
	out := h.post(`{"botId":"b","groupId":1,"message":"Talk to human","metadata":{"TALK_TO_HUMAN":"true"}}`)
	if len(out) != 2 {
		t.Fatalf("answer %+v", out)
	}
	b, _ := json.Marshal(out[1].Metadata.Payload)
	if !strings.Contains(string(b), `"action":{"message":"Send","postFormDataAsMessage":true,"requestType":"postBackToBotPlatform"}`) {
		t.Errorf("the handoff form's submit does not post the values visibly: %s", b)
	}
	// A form the model asks for posts back to the bot alone.
	h2 := newHarness(t, botsWith("json_schema", []string{formsYAML}, nil), "")
	h2.model.Enqueue(llmtest.Reply{Content: `{"reply":"Sure.","confidence":0.9,"handoff":false,"handoff_reason":"","team":"","suggested_replies":[],"form":"contact"}`})
	out = h2.post(msg("contact me"))
	b, _ = json.Marshal(out[len(out)-1].Metadata.Payload)
	if strings.Contains(string(b), "postFormDataAsMessage") {
		t.Errorf("a model's form posts its values visibly: %s", b)
	}
}

// KM_TRIGGER_EVENT makes an event of the hidden "Event: NAME" message
// (or an empty one) only; a message the user typed keeps its words.
func TestTriggerEventOnTypedText(t *testing.T) {
	for _, tt := range []struct{ text, name, kept string }{
		{"Event: PRICING", "PRICING", ""},
		{"event:pricing", "PRICING", ""},
		{"", "PRICING", ""},
		{"How much is the Pro plan?", "", "How much is the Pro plan?"},
		{"Event: OTHER", "", "Event: OTHER"},
	} {
		body, _ := json.Marshal(map[string]any{"botId": "b", "groupId": 1, "message": tt.text, "metadata": map[string]any{"KM_TRIGGER_EVENT": "PRICING"}})
		ev, err := adapter.DecodeEvent(body, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if ev.Name != tt.name || ev.Text != tt.kept {
			t.Errorf("%q: event %q text %q, want %q %q", tt.text, ev.Name, ev.Text, tt.name, tt.kept)
		}
	}
}

// A bot that asked for a file hides the attach button again once one
// came.
func TestAttachButtonOffAfterFile(t *testing.T) {
	h := newHarness(t, botsWith("json_schema", []string{"ask_for_files: true", "vision: false"}, nil), "")
	h.model.Enqueue(llmtest.Reply{Content: contract("Got it, thanks.", 0.9, false, "")})
	got := string(h.postRaw(`{"botId":"b","groupId":1,"message":"","eventName":"KOMMUNICATE_MEDIA_EVENT","metadata":{"KM_CHAT_CONTEXT":{"attachments":[{"type":"image/png","payload":{"name":"r.png","url":"https://example.com/r.png"}}]}}}`))
	if want := `[{"message":"Got it, thanks.","metadata":{"KM_ENABLE_ATTACHMENT":false}}]`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// On WhatsApp quick replies keep their three slots; links that find no
// slot are written into the text, never dropped. Cards and forms, which
// WhatsApp does not show, arrive as numbered text.
func TestWhatsAppFits(t *testing.T) {
	h := newHarness(t, botsWith("json_object", []string{"channel: whatsapp", "link_buttons: true", "rich: [cards]", formsYAML}, nil), "")
	h.model.Enqueue(llmtest.Reply{Content: `{"reply":"See [returns](https://acme.example/returns) and [shipping](https://acme.example/shipping).","confidence":0.9,` +
		`"suggested_replies":["Start a return","Track","Talk to billing"],` +
		`"cards":[{"title":"Pro","subtitle":"$10","buttons":[{"label":"Buy","url":"https://acme.example/buy"}]}],"form":"contact"}`})
	golden(t, "channel_whatsapp_fits.golden", h.postRaw(msg("help")))
}

// A provider's error that echoes what it was sent puts neither the user's
// words nor the key in the log when content logging is off; the key never.
func TestErrorsRedactedInLogs(t *testing.T) {
	const words = "my order 1234 never came and I am upset"
	for _, content := range []bool{false, true} {
		core, logs := observer.New(zap.InfoLevel)
		h := newHarnessWith(t, botsWith("json_schema", nil, nil), "", zap.New(core), content)
		h.model.Enqueue(llmtest.Reply{Status: 400, Body: `{"error":{"message":"Invalid 'messages[1].content': '` + words + `' (key test-key)"}}`})
		h.post(msg(words))
		lines := logs.FilterMessage("webhook").All()
		if len(lines) != 1 {
			t.Fatalf("%d webhook lines", len(lines))
		}
		logged := fmt.Sprint(lines[0].ContextMap()["model_error"])
		if strings.Contains(logged, "test-key") {
			t.Errorf("content %v: the key reached the log: %s", content, logged)
		}
		if strings.Contains(logged, words) != content {
			t.Errorf("content %v: the user's words in the log: %v (%s)", content, strings.Contains(logged, words), logged)
		}
		if !strings.Contains(logged, "HTTP 400") {
			t.Errorf("content %v: the error itself is gone: %s", content, logged)
		}
	}
}
