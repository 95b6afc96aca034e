package adapter_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sashabaranov/go-openai"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/adapter"
	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// formsYAML is a bot's forms, in one line for botsWith.
const formsYAML = `forms: {contact: {text: "Leave your details and we'll get back to you.", submit: Send, fields: [` +
	`{name: name, label: Name, required: true}, {name: email, label: Email, regex: "^[^@ ]+@[^@ ]+$", error: "Enter an email address"}, ` +
	`{name: topic, label: Topic, type: dropdown, options: [Billing, Returns]}, {name: src, type: hidden, value: bot}]}}`

// A model that answers with cards, a list, images, a form and a request
// for a file, in a JSON format and as tool calls: the exact arrays are
// pinned, one Kommunicate message per part.
func TestRichAnswers(t *testing.T) {
	bot := []string{"rich: [cards, lists, images]", "ask_for_files: true", formsYAML}
	for _, tt := range []struct {
		format string
		reply  llmtest.Reply
	}{
		{"json_schema", llmtest.Reply{Content: `{"reply":"Here are our plans.","confidence":0.9,"handoff":false,"handoff_reason":"","team":"","suggested_replies":["Compare"],` +
			`"cards":[{"title":"Pro","subtitle":"$10 a month","image_url":"https://acme.example/pro.png","buttons":[{"label":"Buy","url":"https://acme.example/buy/pro","reply":""},{"label":"Tell me more","url":"","reply":"Tell me more about Pro"}]},` +
			`{"title":"Team","subtitle":"$25 a month","image_url":"","buttons":[]}],` +
			`"list":{"header":"Or pick a topic","items":[{"title":"Billing","description":"Invoices and payments","reply":"Billing question"}]},` +
			`"images":[{"url":"https://acme.example/compare.png","caption":"Side by side"}],"form":"contact","request_file":true}`}},
		{"tools", llmtest.Reply{Content: "Here are our plans.", ToolCalls: []openai.ToolCall{
			{ID: "1", Type: "function", Function: openai.FunctionCall{Name: "show_cards", Arguments: `{"cards":[{"title":"Pro","subtitle":"$10 a month","image_url":"https://acme.example/pro.png","buttons":[{"label":"Buy","url":"https://acme.example/buy/pro"},{"label":"Tell me more","reply":"Tell me more about Pro"}]},{"title":"Team","subtitle":"$25 a month"}]}`}},
			{ID: "2", Type: "function", Function: openai.FunctionCall{Name: "show_list", Arguments: `{"header":"Or pick a topic","items":[{"title":"Billing","description":"Invoices and payments","reply":"Billing question"}]}`}},
			{ID: "3", Type: "function", Function: openai.FunctionCall{Name: "show_images", Arguments: `{"images":[{"url":"https://acme.example/compare.png","caption":"Side by side"}]}`}},
			{ID: "4", Type: "function", Function: openai.FunctionCall{Name: "show_form", Arguments: `{"name":"contact"}`}},
			{ID: "5", Type: "function", Function: openai.FunctionCall{Name: "request_file", Arguments: `{}`}},
		}}},
	} {
		t.Run(tt.format, func(t *testing.T) {
			h := newHarness(t, botsWith(tt.format, append(bot, "suggested_replies: {max: 0}"), nil), "")
			h.model.Enqueue(tt.reply)
			golden(t, "rich_answer.golden", h.postRaw(msg("which plan?")))
		})
	}
}

// Rich parts that break the rules are left out: the user gets the text,
// never a broken widget.
func TestInvalidRichIsLeftOut(t *testing.T) {
	h := newHarness(t, botsWith("json_object", []string{"rich: [cards, images]"}, nil), "")
	h.model.Enqueue(llmtest.Reply{Content: `{"reply":"Have a look.","confidence":0.9,"cards":[{"subtitle":"no title"}],"images":[{"url":"http://acme.example/x.png"},{"url":"javascript:alert(1)"}],"list":{"items":[{"title":"not allowed"}]}}`})
	if got, want := string(h.postRaw(msg("show me"))), `[{"message":"Have a look."}]`; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// Out of hours a handoff still assigns; the user is told when people are
// back and gets the offline form.
func TestOfflineHandoff(t *testing.T) {
	h := newHarness(t, botsWith("json_schema", []string{formsYAML},
		[]string{`hours: {time_zone: Europe/Berlin, weekly: {mon-sun: closed}}`, `offline_form: contact`,
			`offline_message: "We're offline; a teammate will pick this up {{.Opens}}."`}), "")
	golden(t, "handoff_offline.golden", h.postRaw(`{"botId":"b","groupId":1,"message":"Talk to human","metadata":{"TALK_TO_HUMAN":"true"}}`))
	if h.model.Calls() != 0 {
		t.Errorf("the model was asked")
	}
}

// Buttons fitted to the channel: the web widget gets full titles; on
// WhatsApp three buttons of 20 characters, more become a list; on
// Messenger 13. Titles are cut between characters, never inside one.
func TestChannels(t *testing.T) {
	five := `["Track my order please 🚚","Return an item I bought","Change my address","Cancel my order","Talk to billing 👩‍👩‍👧‍👦 team"]`
	fifteen := make([]string, 15)
	for i := range fifteen {
		fifteen[i] = fmt.Sprintf("Option %d with a long title", i+1)
	}
	fifteenJSON, _ := json.Marshal(fifteen)
	for _, tt := range []struct {
		name, bot, source, suggested string
	}{
		{"web", "", `"source":1,`, five},
		{"whatsapp_buttons", "channel: whatsapp", `"source":1,`, `["Track my order please 🚚","Talk to billing 👩‍👩‍👧‍👦 team","Cancel"]`},
		{"whatsapp_list", "channel: whatsapp", `"source":"WHATSAPP",`, five},
		{"messenger", "channel: messenger", `"source":3,`, string(fifteenJSON)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bot := []string{"suggested_replies: {max: 20}"}
			if tt.bot != "" {
				bot = append(bot, tt.bot)
			}
			h := newHarness(t, botsWith("json_object", bot, nil), "")
			h.model.Enqueue(llmtest.Reply{Content: `{"reply":"Pick one.","confidence":0.9,"suggested_replies":` + tt.suggested + `}`})
			body := `{"botId":"b","groupId":1,` + tt.source + `"message":"help"}`
			golden(t, "channel_"+tt.name+".golden", h.postRaw(body))
		})
	}
}

// A form's post-back, in each documented shape, reaches the model as
// labelled facts, not as JSON; a click of a quick reply is told apart.
func TestFormPostBack(t *testing.T) {
	want := "(The user filled in the form contact.)\nName: Asha\nEmail: asha@example.com\nTopic: Billing, Returns"
	for _, tt := range []struct{ name, metadata string }{
		{"object", `{"KM_CHAT_CONTEXT":{"formData":{"name":"Asha","email":"asha@example.com","topic":["Billing","Returns"],"src":"bot"},"formMsgKey":"5-1-1"}}`},
		{"string context", `{"KM_CHAT_CONTEXT":"{\"formData\":{\"name\":\"Asha\",\"email\":\"asha@example.com\",\"topic\":[\"Billing\",\"Returns\"]},\"formMsgKey\":\"5-1-1\"}"}`},
		{"string formData", `{"KM_CHAT_CONTEXT":{"formData":"{\"name\":\"Asha\",\"email\":\"asha@example.com\",\"topic\":[\"Billing\",\"Returns\"]}"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, botsWith("json_schema", []string{formsYAML}, nil), "")
			h.model.Enqueue(llmtest.Reply{Content: contract("Thanks Asha, we'll email you.", 0.9, false, "")})
			if got := texts(h.post(`{"botId":"b","groupId":1,"message":"Send","metadata":` + tt.metadata + `}`)); len(got) != 1 || got[0] != "Thanks Asha, we'll email you." {
				t.Fatalf("answer %v", got)
			}
			msgs := h.model.Last(t).Chat.Messages
			if got := msgs[len(msgs)-1].Content; got != want {
				t.Errorf("the model read:\n%s\nwant:\n%s", got, want)
			}
			if strings.Contains(msgs[len(msgs)-1].Content, "{") {
				t.Errorf("raw JSON reached the model")
			}
		})
	}
}

// The webhook's shapes for a click and a channel: a quick reply's
// replyMetadata comes back in the message's metadata; the channel is never
// guessed from source (Kommunicate documents it as web or mobile only),
// whatever it holds.
func TestDecodeClickAndChannel(t *testing.T) {
	for _, tt := range []struct {
		body             string
		clicked, channel string
	}{
		{`{"botId":"b","groupId":1,"message":"Returns","metadata":{"kommbridge_button":"quick_reply"}}`, "quick_reply", ""},
		{`{"botId":"b","groupId":1,"message":"Returns","source":1}`, "", ""},
		{`{"botId":"b","groupId":1,"message":"Returns","source":"WHATSAPP"}`, "", ""},
		{`{"botId":"b","groupId":1,"message":"Returns","source":"instagram_dm"}`, "", ""},
		{`{"botId":"b","groupId":1,"message":"Returns","source":"FACEBOOK"}`, "", ""},
		{`{"botId":"b","groupId":1,"message":"Returns","source":{"x":1}}`, "", ""},
	} {
		ev, err := adapter.DecodeEvent([]byte(tt.body), time.Now())
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		if ev.Clicked != tt.clicked || ev.Channel != tt.channel {
			t.Errorf("%s: clicked %q channel %q, want %q %q", tt.body, ev.Clicked, ev.Channel, tt.clicked, tt.channel)
		}
	}
}

// What a user reads as buttons, from every template kommbridge sends: the
// labels eval checks its buttons expectations against.
func TestButtons(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    kommbridge.Message
		want []string
	}{
		{"quick replies", kommbridge.Message{Text: "x", QuickReplies: []string{"Track my order", "Returns"}}, []string{"Track my order", "Returns"}},
		{"links", kommbridge.Message{Text: "x", Links: []kommbridge.Link{{Name: "Help", URL: "https://a.example"}}}, []string{"Help"}},
		{"both", kommbridge.Message{Text: "x", QuickReplies: []string{"More"}, Links: []kommbridge.Link{{Name: "Help", URL: "https://a.example"}}}, []string{"Help", "More"}},
		{"cards", kommbridge.Message{Text: "x", Cards: []kommbridge.Card{{Title: "Pro", Buttons: []kommbridge.Button{{Name: "Buy", URL: "https://a.example"}, {Name: "More", Reply: "More"}}}}}, []string{"Buy", "More"}},
		{"list", kommbridge.Message{Text: "x", List: &kommbridge.List{Items: []kommbridge.ListItem{{Title: "Billing", Reply: "Billing"}}}}, []string{"Billing"}},
		{"none", kommbridge.Message{Text: "x", Resolve: true}, nil},
	} {
		var got []string
		resolves := false
		for _, m := range adapter.Render(kommbridge.Reply{Messages: []kommbridge.Message{tt.m}}) {
			got = append(got, m.Buttons()...)
			resolves = resolves || m.Resolves()
		}
		if !slices.Equal(got, tt.want) || resolves != tt.m.Resolve {
			t.Errorf("%s: buttons %q resolves %v, want %q %v", tt.name, got, resolves, tt.want, tt.m.Resolve)
		}
	}
}

// What docs/handoff.md says the logs show: a handoff out of hours, a quick
// reply's click, rich parts left out.
func TestLogsOfKommunicateFeatures(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	h := newLoggedHarness(t, botsWith("json_object", []string{"rich: [cards]"}, []string{`hours: {weekly: {mon-sun: closed}}`}), "", zap.New(core))
	h.post(`{"botId":"b","groupId":1,"key":"k1","message":"Talk to human","metadata":{"TALK_TO_HUMAN":"true"}}`)
	h.model.Enqueue(llmtest.Reply{Content: `{"reply":"Have a look.","confidence":0.9,"cards":[{"subtitle":"no title"}]}`})
	h.post(`{"botId":"b","groupId":2,"key":"k2","message":"Returns","metadata":{"kommbridge_button":"quick_reply"}}`)
	fields := func(msg string) []map[string]any {
		var out []map[string]any
		for _, e := range logs.FilterMessage(msg).All() {
			out = append(out, e.ContextMap())
		}
		return out
	}
	hooks := fields("webhook")
	if len(hooks) != 2 || hooks[0]["offline"] != true || hooks[0]["handoff_reason"] != "button" || hooks[1]["clicked"] != "quick_reply" {
		t.Errorf("webhook log lines: %v", hooks)
	}
	left := fields("rich answer parts left out")
	if len(left) != 1 || fmt.Sprint(left[0]["dropped"]) != "[a card without a title]" {
		t.Errorf("rich log lines: %v", left)
	}
}
