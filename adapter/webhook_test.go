package adapter_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kommbridge/kommbridge/llm/llmtest"
)

func TestBadInputs(t *testing.T) {
	h := newHarness(t, "", "")
	auth := map[string]string{"X-Kommbridge-Token": token}
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		header     map[string]string
		wantStatus int
		wantError  string
	}{
		{"no auth header", "POST", "/webhook", msg("hi"), nil, 401, "missing X-Kommbridge-Token header"},
		{"wrong auth header", "POST", "/webhook", msg("hi"), map[string]string{"X-Kommbridge-Token": "nope"}, 401, "wrong X-Kommbridge-Token header value"},
		{"auth checked before the body", "POST", "/webhook", "{", nil, 401, "missing X-Kommbridge-Token header"},
		{"malformed JSON", "POST", "/webhook", `{"botId": "b", "groupId": `, auth, 400, "malformed JSON"},
		{"empty body", "POST", "/webhook", ``, auth, 400, "empty body: expected a JSON object"},
		{"array body", "POST", "/webhook", `[1,2]`, auth, 400, "body must be a JSON object, not an array"},
		{"missing botId", "POST", "/webhook", `{"groupId": 5, "message": "hi"}`, auth, 400, "missing botId"},
		{"missing groupId", "POST", "/webhook", `{"botId": "b", "message": "hi"}`, auth, 400, "missing groupId"},
		{"null groupId", "POST", "/webhook", `{"botId": "b", "groupId": null}`, auth, 400, "missing groupId"},
		{"not a webhook", "POST", "/webhook", `{"hello": "world"}`, auth, 400, "missing botId and groupId: is this a Kommunicate webhook?"},
		{"groupId of the wrong type", "POST", "/webhook", `{"botId": "b", "groupId": true}`, auth, 400, "groupId: must be a string or a number, not a boolean"},
		{"too large", "POST", "/webhook", `{"botId": "b", "groupId": 1, "message": "` + strings.Repeat("x", 5000) + `"}`, auth, 413, "over the 4096-byte limit (server.max_body_bytes)"},
		{"wrong method", "GET", "/webhook", ``, auth, 405, "method GET not allowed on /webhook"},
		{"unknown path", "POST", "/hook", msg("hi"), auth, 404, "no such path /hook; Kommunicate's webhook is POST /webhook"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.do(tt.method, tt.path, tt.body, tt.header)
			if r.status != tt.wantStatus {
				t.Errorf("status %d, want %d (body %s)", r.status, tt.wantStatus, r.body)
			}
			var body struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(r.body, &body); err != nil {
				t.Fatalf("error body is not JSON: %s", r.body)
			}
			if !strings.Contains(body.Error, tt.wantError) {
				t.Errorf("error %q, want it to contain %q", body.Error, tt.wantError)
			}
		})
	}
	if n := h.model.Calls(); n != 0 {
		t.Errorf("the model was called %d times for bad input", n)
	}
}

func TestUnknownBotWithoutDefault(t *testing.T) {
	h := newHarness(t, "bots:\n  - id: sales-bot\n", "")
	r := h.do("POST", "/webhook", msg("hi"), map[string]string{"X-Kommbridge-Token": token})
	if r.status != http.StatusNotFound || !strings.Contains(string(r.body), `no bot configured for botId \"support-bot\"`) {
		t.Errorf("got %d %s, want 404 naming the bot", r.status, r.body)
	}
}

// The example requests of the Kommunicate protocol, each with the exact
// JSON Kommunicate receives.
func TestExampleRequests(t *testing.T) {
	tests := []struct {
		name   string
		reply  llmtest.Reply
		body   string
		golden string
		calls  int
	}{
		{
			name:   "text message",
			reply:  llmtest.Reply{Content: llmtest.Contract("Your order shipped on Monday.", 0.9, "Track my order", "Talk to a person")},
			body:   `{"botId":"support-bot","key":"5-16650159-1550757013897","from":"u-9Mjpl","message":"Where is my order?","groupId":16650159,"metadata":{"KM_CHAT_CONTEXT":"{\"kmUserLocale\":\"en\"}"},"contentType":0,"applicationId":"1bfe0fad3344291b5","source":1,"createdAt":1550757013912}`,
			golden: "answer_text.golden", calls: 1,
		},
		{
			name:   "welcome",
			body:   `{"botId":"support-bot","key":"5-16650160-1550757020000","from":"u-9Mjpl","message":"","groupId":"16650160","metadata":{"KM_CHAT_CONTEXT":{"kmUserLocale":"en","name":"Asha"}},"contentType":10,"applicationKey":"1bfe0fad3344291b5","source":1,"eventName":"WELCOME","createdAt":1550757020000}`,
			golden: "answer_welcome.golden", calls: 0,
		},
		{
			name:   "image",
			reply:  llmtest.Reply{Content: llmtest.Contract("Thanks, I can see your receipt.", 0.8)},
			body:   `{"botId":"support-bot","key":"5-16650159-1552638706610","from":"u-9Mjpl","message":"","groupId":16650159,"eventName":"KOMMUNICATE_MEDIA_EVENT","contentType":1,"source":1,"createdAt":1552638706610,"metadata":{"KM_CHAT_CONTEXT":{"attachments":[{"type":"image/png","payload":{"name":"receipt.png","url":"https://example.com/f/receipt.png","size":"48213"}}]}}}`,
			golden: "answer_image.golden", calls: 1,
		},
		{
			name:   "location",
			reply:  llmtest.Reply{Content: llmtest.Contract("The nearest store is on MG Road.", 0.8)},
			body:   `{"botId":"support-bot","key":"5-16650159-1552638709999","from":"u-9Mjpl","message":"","groupId":16650159,"eventName":"KOMMUNICATE_MEDIA_EVENT","contentType":2,"source":1,"createdAt":1552638709999,"metadata":{"KM_CHAT_CONTEXT":{"attachments":[{"type":"location","payload":{"lat":12.97,"lon":77.59}}]}}}`,
			golden: "answer_location.golden", calls: 1,
		},
		{
			name:   "talk to human button",
			body:   `{"botId":"support-bot","key":"5-16650159-1552638900000","from":"u-9Mjpl","message":"Talk to human","groupId":16650159,"contentType":0,"source":1,"createdAt":1552638900000,"metadata":{"TALK_TO_HUMAN":"true","KM_CHAT_CONTEXT":"{}"}}`,
			golden: "answer_button.golden", calls: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "", "")
			h.model.Enqueue(tt.reply)
			golden(t, tt.golden, h.postRaw(tt.body))
			if got := h.model.Calls(); got != tt.calls {
				t.Errorf("model called %d times, want %d", got, tt.calls)
			}
		})
	}
}

// What the model receives for each example: pinned as golden files.
func TestModelRequestGolden(t *testing.T) {
	h := newHarness(t, "", "")
	h.model.Enqueue(llmtest.Reply{Content: llmtest.Contract("Hello!", 0.9)})
	h.post(`{"botId":"support-bot","key":"a","from":"u-9Mjpl","message":"Where is my order?","groupId":16650159,"metadata":{"KM_CHAT_CONTEXT":{"kmUserLanguageCode":"de","kmUserLocale":"de-DE","plan":"gold"}}}`)
	golden(t, "request_text.golden", h.model.Last(t).Body)

	h.model.Enqueue(llmtest.Reply{Content: llmtest.Contract("I see the receipt.", 0.9)})
	h.post(`{"botId":"support-bot","key":"b","from":"u-9Mjpl","message":"Is this right?","groupId":16650159,"eventName":"KOMMUNICATE_MEDIA_EVENT","metadata":{"KM_CHAT_CONTEXT":{"attachments":[{"type":"image/png","payload":{"name":"receipt.png","url":"https://example.com/f/receipt.png"}},{"type":"location","payload":{"lat":"12.97","lon":"77.59"}}]}}}`)
	golden(t, "request_media.golden", h.model.Last(t).Body)
}

// Every shape of the protocol's fields is accepted and reaches the model.
func TestPayloadShapes(t *testing.T) {
	tests := []struct {
		name, body, wantLang string
	}{
		{"groupId number", `{"botId":"b","groupId":42,"message":"hi"}`, "the user's language"},
		{"groupId string", `{"botId":"b","groupId":"42","message":"hi"}`, "the user's language"},
		{"applicationId", `{"botId":"b","groupId":1,"message":"hi","applicationId":"app"}`, "the user's language"},
		{"applicationKey", `{"botId":"b","groupId":1,"message":"hi","applicationKey":"app"}`, "the user's language"},
		{"contentType string", `{"botId":"b","groupId":1,"message":"hi","contentType":"0","source":"1"}`, "the user's language"},
		{"metadata null", `{"botId":"b","groupId":1,"message":"hi","metadata":null}`, "the user's language"},
		{"metadata not an object", `{"botId":"b","groupId":1,"message":"hi","metadata":"x"}`, "the user's language"},
		{"chat context object", `{"botId":"b","groupId":1,"message":"hi","metadata":{"KM_CHAT_CONTEXT":{"kmUserLocale":"fr"}}}`, "fr"},
		{"chat context string", `{"botId":"b","groupId":1,"message":"hi","metadata":{"KM_CHAT_CONTEXT":"{\"kmUserLocale\":\"es\"}"}}`, "es"},
		{"chat context empty string", `{"botId":"b","groupId":1,"message":"hi","metadata":{"KM_CHAT_CONTEXT":"{}"}}`, "the user's language"},
		{"chat context broken", `{"botId":"b","groupId":1,"message":"hi","metadata":{"KM_CHAT_CONTEXT":"{oops"}}`, "the user's language"},
		{"language code wins over locale", `{"botId":"b","groupId":1,"message":"hi","metadata":{"KM_CHAT_CONTEXT":{"kmUserLocale":"pt-BR","kmUserLanguageCode":"pt"}}}`, "pt"},
		{"unknown fields", `{"botId":"b","groupId":1,"message":"hi","brandNew":{"x":[1]},"another":true}`, "the user's language"},
		{"createdAt string", `{"botId":"b","groupId":1,"message":"hi","createdAt":"1550757013912"}`, "the user's language"},
		// Fields kommbridge does not read may take any type.
		{"source a boolean", `{"botId":"b","groupId":1,"message":"hi","source":true}`, "the user's language"},
		{"unread fields of any type", `{"botId":"b","groupId":1,"message":"hi","contentType":{"x":1},"applicationKey":[1],"applicationId":false,"createdAt":{"t":1}}`, "the user's language"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "", "")
			h.model.Enqueue(llmtest.Reply{Content: llmtest.Contract("Hello there.", 0.9)})
			got := texts(h.post(tt.body))
			if diff := cmp.Diff([]string{"Hello there."}, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			system := h.model.Last(t).Chat.Messages[0].Content
			if !strings.Contains(system, "Answer in "+tt.wantLang+".") {
				t.Errorf("system prompt %q does not say the language %q", system, tt.wantLang)
			}
		})
	}
}

func TestEventsWithoutText(t *testing.T) {
	h := newHarness(t, "", "")
	for _, body := range []string{
		`{"botId":"b","groupId":1,"message":"","eventName":"KM_CUSTOM_TRIGGER"}`,
		`{"botId":"b","groupId":1,"message":"   "}`,
	} {
		if got := h.postRaw(body); string(got) != "[]" {
			t.Errorf("%s: answer %s, want []", body, got)
		}
	}
	h.model.Enqueue(llmtest.Reply{Content: llmtest.Contract("Sure.", 0.9)})
	got := texts(h.post(`{"botId":"b","groupId":1,"message":"book a demo","eventName":"KM_CUSTOM_TRIGGER"}`))
	if diff := cmp.Diff([]string{"Sure."}, got); diff != "" {
		t.Errorf("custom event with text: (-want +got):\n%s", diff)
	}
	if n := h.model.Calls(); n != 1 {
		t.Errorf("model calls %d, want 1", n)
	}
}

// The model sees its own conversation's history, and not another's.
func TestHistoryIsPerConversation(t *testing.T) {
	h := newHarness(t, "", "")
	h.model.Default(func(r llmtest.Request) llmtest.Reply {
		last := r.Chat.Messages[len(r.Chat.Messages)-1].Content
		return llmtest.Reply{Content: llmtest.Contract("echo: "+last, 0.9)}
	})
	h.post(`{"botId":"b","key":"1","groupId":1,"message":"I am Ana"}`)
	h.post(`{"botId":"b","key":"2","groupId":2,"message":"I am Bo"}`)
	h.post(`{"botId":"b","key":"3","groupId":1,"message":"Who am I?"}`)

	var got []string
	for _, m := range h.model.Last(t).Chat.Messages[1:] {
		got = append(got, m.Role+": "+m.Content)
	}
	want := []string{"user: I am Ana", "assistant: echo: I am Ana", "user: Who am I?"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("conversation 1's request (-want +got):\n%s", diff)
	}
}

func TestWelcomeResetsHistory(t *testing.T) {
	h := newHarness(t, "", "")
	h.model.Enqueue(llmtest.Reply{Content: llmtest.Contract("Noted.", 0.9)}, llmtest.Reply{Content: llmtest.Contract("Hello.", 0.9)})
	h.post(`{"botId":"b","key":"1","groupId":7,"message":"old topic"}`)
	h.post(`{"botId":"b","key":"2","groupId":7,"eventName":"WELCOME","message":""}`)
	h.post(`{"botId":"b","key":"3","groupId":7,"message":"new topic"}`)
	var got []string
	for _, m := range h.model.Last(t).Chat.Messages[1:] {
		got = append(got, m.Role+": "+m.Content)
	}
	want := []string{"assistant: Hi! How can I help?", "user: new topic"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("after WELCOME (-want +got):\n%s", diff)
	}
}

// A model that never answers still gives the user the error message (and
// the handoff) before the budget ends.
func TestModelHangsPastBudget(t *testing.T) {
	h := newHarness(t, "", "600ms")
	h.model.Default(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Hang: true} })
	client := &http.Client{Timeout: 5 * time.Second} // far past the budget: only a hung bridge trips it
	req, _ := http.NewRequest("POST", h.url+"/webhook", strings.NewReader(msg("hello?")))
	req.Header.Set("X-Kommbridge-Token", token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	defer resp.Body.Close()
	var got []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %d, err %v", resp.StatusCode, err)
	}
	want := []map[string]any{
		{"message": "Sorry, I'm having trouble answering right now."},
		{"message": "Let me connect you with a teammate.", "metadata": map[string]any{"KM_ASSIGN_TO": ""}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("answer (-want +got):\n%s", diff)
	}
}

func TestModelFailures(t *testing.T) {
	errorAnswer := []string{"Sorry, I'm having trouble answering right now.", "Let me connect you with a teammate."}
	tests := []struct {
		name    string
		replies []llmtest.Reply
		want    []string
	}{
		{"500 then 200 is retried", []llmtest.Reply{{Status: 500}, {Content: llmtest.Contract("Fine now.", 0.9)}}, []string{"Fine now."}},
		{"500 twice exhausts retries", []llmtest.Reply{{Status: 500}, {Status: 503}}, errorAnswer},
		{"401 is not retried", []llmtest.Reply{{Status: 401}, {Content: llmtest.Contract("never", 0.9)}}, errorAnswer},
		{"malformed body", []llmtest.Reply{{Body: `<html>bad gateway</html>`}, {Body: `{"choices": [`}}, errorAnswer},
		{"plain text instead of JSON", []llmtest.Reply{{Content: "Your order shipped."}}, []string{"Your order shipped."}},
		{"JSON in a code fence", []llmtest.Reply{{Content: "```json\n" + llmtest.Contract("Fenced.", 0.9) + "\n```"}}, []string{"Fenced."}},
		{"JSON with extra text", []llmtest.Reply{{Content: "Here you go: " + llmtest.Contract("Wrapped.", 0.9)}}, []string{"Wrapped."}},
		{"truncated JSON", []llmtest.Reply{{Content: `{"reply": "Your order ships tomorr`}}, []string{"Your order ships tomorr"}},
		{"JSON without reply", []llmtest.Reply{{Content: `{"confidence": 0.9}`}}, errorAnswer},
		{"empty content", []llmtest.Reply{{Content: ""}}, errorAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, "", "")
			h.model.Enqueue(tt.replies...)
			h.model.Default(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Status: 500} })
			got := texts(h.post(msg("where is my order?")))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			for _, m := range got {
				if strings.Contains(m, "{") {
					t.Errorf("user sees raw JSON: %q", m)
				}
			}
		})
	}
}

func TestHealthAndReady(t *testing.T) {
	h := newHarness(t, "", "")
	for _, path := range []string{"/healthz", "/readyz"} {
		if r := h.do("GET", path, "", nil); r.status != 200 {
			t.Errorf("%s: %d %s", path, r.status, r.body)
		}
	}
}
