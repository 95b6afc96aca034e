package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/kommbridge/kommbridge/action"
	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// businessAPI is a fake of the business's own API: it records each call
// and answers an order's status, or cancels it.
type businessAPI struct {
	*httptest.Server
	mu     sync.Mutex
	calls  []string // "METHOD path body"
	auth   []string
	status int // answer this status instead, when set
}

func newBusinessAPI(t *testing.T) *businessAPI {
	a := &businessAPI{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.calls = append(a.calls, strings.TrimSpace(r.Method+" "+r.URL.EscapedPath()+" "+string(body)))
		a.auth = append(a.auth, r.Header.Get("Authorization"))
		status := a.status
		a.mu.Unlock()
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/cancel") {
			w.Write([]byte(`{"status":"cancelled","refund":"59.90 EUR"}`))
			return
		}
		w.Write([]byte(`{"status":"shipped","carrier":"DHL","eta":"2026-12-05","internal":{"warehouse":"L3","margin":0.41}}`))
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *businessAPI) made() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.calls...)
}

const apiToken = "s3cret-api-token-9f2"

func actionsConfig(t *testing.T, fake *llmtest.Server, api *businessAPI) string {
	u, _ := url.Parse(api.URL)
	order := `{type: object, properties: {order_id: {type: string, pattern: "^[0-9]{4,10}$", description: The order number}}, required: [order_id]}`
	return writeConfig(t, fmt.Sprintf(`
server: {addr: "127.0.0.1:0"}
llm: {base_url: %q, api_key: k, max_retries: 0}
log: {level: info}
media: {allowed_hosts: [%q]}
confirmations: {secret: "c0nfirm-secret"}
identity: {secret: "id-secret"}
actions:
  - name: order_status
    description: Look up an order's status and delivery date by its number.
    url: %s/orders/{order_id}
    parameters: %s
    headers: {Authorization: "Bearer ${ACME_TOKEN}"}
    response_fields: [status, carrier, eta]
  - name: cancel_order
    description: Cancel an order that has not shipped yet.
    method: POST
    url: %s/orders/{order_id}/cancel
    parameters: %s
    headers: {Authorization: "Bearer ${ACME_TOKEN}"}
    response_fields: [status, refund]
    confirm: "Cancel order {order_id}?"
    identity: required
bots:
  - id: "*"
    system_prompt: "You are ACME's assistant."
    actions: [order_status, cancel_order]
    max_action_rounds: 2
`, fake.URL(), u.Host, api.URL, order, api.URL, order))
}

func webhookBody(key, conv, text string, metadata map[string]any) string {
	m := map[string]any{"botId": "b", "key": key, "groupId": conv, "from": "u-42", "message": text}
	if metadata != nil {
		m["metadata"] = metadata
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// signedIn is the chat context of user u-42 as the website vouches for it.
func signedIn() map[string]any {
	return map[string]any{"KM_CHAT_CONTEXT": map[string]any{"kommbridge_user_sig": action.SignUser("id-secret", "u-42")}}
}

// "Where is my order 1234?": the model calls order_status, kommbridge
// calls the API with the operator's header, gives the model only the
// declared fields, and keeps a summary in history for the next message;
// the API's secret reaches no model request and no log line.
func TestActionLooksUpAnOrder(t *testing.T) {
	fake, api := llmtest.New(t), newBusinessAPI(t)
	p := startProcess(t, actionsConfig(t, fake, api), env(map[string]string{"ACME_TOKEN": apiToken}))
	fake.Enqueue(llmtest.Reply{ToolCalls: []openai.ToolCall{llmtest.Call("c1", "order_status", `{"order_id":"1234"}`)}},
		llmtest.Reply{Content: llmtest.Contract("Order 1234 shipped with DHL and arrives on 5 December.", 0.9)})
	got := post(t, p.base, webhookBody("k1", "c-1", "Where is my order 1234?", nil))
	if got != `[{"message":"Order 1234 shipped with DHL and arrives on 5 December."}]` {
		t.Errorf("answer %s", got)
	}
	if calls := api.made(); len(calls) != 1 || calls[0] != "GET /orders/1234" || api.auth[0] != "Bearer "+apiToken {
		t.Errorf("API calls %q, auth %q", calls, api.auth)
	}
	reqs := fake.Requests()
	second := reqs[1].Chat.Messages
	if tool := second[len(second)-1]; tool.Role != "tool" || tool.ToolCallID != "c1" || tool.Content != `{"result":{"carrier":"DHL","eta":"2026-12-05","status":"shipped"},"status":200}` {
		t.Errorf("the model was given %+v", tool)
	}
	if !strings.Contains(string(reqs[0].Body), `"name":"order_status"`) || !strings.Contains(string(reqs[0].Body), `"response_format"`) {
		t.Errorf("the first request offers no action tool next to the response format: %s", reqs[0].Body)
	}
	fake.Enqueue(llmtest.Reply{Content: llmtest.Contract("On 5 December.", 0.9)})
	post(t, p.base, webhookBody("k2", "c-1", "and when will it arrive?", nil))
	history := fmt.Sprint(fake.Last(t).Chat.Messages)
	if !strings.Contains(history, "(order_status for order_id 1234: carrier: DHL; eta: 2026-12-05; status: shipped)") || strings.Contains(history, "margin") {
		t.Errorf("history: %s", history)
	}
	for _, r := range fake.Requests() {
		if bytes.Contains(r.Body, []byte(apiToken)) {
			t.Error("the API token reached the model")
		}
	}
	p.stderr.waitFor(t, `"actions":["order_status ok 200`, 0)
	if strings.Contains(p.stderr.text(), apiToken) {
		t.Error("the API token is in the log")
	}
	if m := get(t, p.base+"/metrics"); !strings.Contains(m, `kommbridge_action_calls_total{action="order_status",kind="ok"} 1`) {
		t.Errorf("metrics: %s", grepLines(m, "kommbridge_action_calls_total"))
	}
}

// A model that keeps calling actions is stopped at max_action_rounds: the
// next request offers no action, so it answers in words; a failing API is
// an answer the model explains, never a handoff.
func TestActionRoundsAreBounded(t *testing.T) {
	fake, api := llmtest.New(t), newBusinessAPI(t)
	api.status = http.StatusInternalServerError
	p := startProcess(t, actionsConfig(t, fake, api), env(map[string]string{"ACME_TOKEN": apiToken}))
	call := llmtest.Reply{ToolCalls: []openai.ToolCall{llmtest.Call("c", "order_status", `{"order_id":"1234"}`)}}
	fake.Enqueue(call, call, llmtest.Reply{Content: llmtest.Contract("The order service is not answering right now; please try again later.", 0.9)})
	got := post(t, p.base, webhookBody("k1", "c-1", "Where is my order 1234?", nil))
	if !strings.Contains(got, "not answering") || strings.Contains(got, "KM_ASSIGN_TO") {
		t.Errorf("answer %s", got)
	}
	reqs := fake.Requests()
	offered := func(r llmtest.Request) bool {
		for _, tool := range r.Chat.Tools {
			if tool.Function != nil && tool.Function.Name == "order_status" {
				return true
			}
		}
		return false
	}
	if len(api.made()) != 2 || len(reqs) != 3 || !offered(reqs[0]) || !offered(reqs[1]) || offered(reqs[2]) {
		t.Errorf("%d API calls, %d model requests; offered: %v %v %v", len(api.made()), len(reqs), offered(reqs[0]), offered(reqs[1]), len(reqs) > 2 && offered(reqs[2]))
	}
	if tool := reqs[1].Chat.Messages[len(reqs[1].Chat.Messages)-1]; !strings.Contains(tool.Content, "HTTP 500") {
		t.Errorf("the model was told %q", tool.Content)
	}
}

// cancel_order changes data: the model's call only shows a confirmation,
// whose Yes runs the call once, for the verified user of this
// conversation; a typed yes, a second click, Kommunicate's retry, a token
// from another conversation, a changed or expired one run nothing.
func TestActionConfirmedOnce(t *testing.T) {
	fake, api := llmtest.New(t), newBusinessAPI(t)
	p := startProcess(t, actionsConfig(t, fake, api), env(map[string]string{"ACME_TOKEN": apiToken}))
	cancel := llmtest.Reply{ToolCalls: []openai.ToolCall{llmtest.Call("c", "cancel_order", `{"order_id":"1234"}`)}}

	// Not signed in: nothing is offered, nothing called.
	fake.Enqueue(cancel, llmtest.Reply{Content: llmtest.Contract("Please sign in first.", 0.9)})
	post(t, p.base, webhookBody("k0", "c-0", "Cancel order 1234", nil))
	if tool := fake.Last(t).Chat.Messages; !strings.Contains(tool[len(tool)-1].Content, "not signed in") {
		t.Errorf("unverified: the model was told %q", tool[len(tool)-1].Content)
	}

	fake.Enqueue(cancel, llmtest.Reply{Content: llmtest.Contract("I can cancel it: please confirm below.", 0.9)})
	got := post(t, p.base, webhookBody("k1", "c-1", "Please cancel order 1234", signedIn()))
	var out []struct {
		Message  string `json:"message"`
		Metadata struct {
			Payload []struct {
				Title         string            `json:"title"`
				ReplyMetadata map[string]string `json:"replyMetadata"`
			} `json:"payload"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(got), &out); err != nil || len(out) != 2 || out[1].Message != "Cancel order 1234?" || len(out[1].Metadata.Payload) != 2 {
		t.Fatalf("offer: %s", got)
	}
	yes, no := out[1].Metadata.Payload[0], out[1].Metadata.Payload[1]
	token := yes.ReplyMetadata["kommbridge_confirm"]
	if yes.Title != "Yes" || no.Title != "No" || token == "" || no.ReplyMetadata["kommbridge_confirm"] != "no" || len(api.made()) != 0 {
		t.Fatalf("buttons %+v %+v; API %q", yes, no, api.made())
	}
	click := func(key, conv, tok string) string {
		md := signedIn()
		md["kommbridge_confirm"] = tok
		md["kommbridge_button"] = "confirm"
		return post(t, p.base, webhookBody(key, conv, "Yes", md))
	}

	fake.Enqueue(llmtest.Reply{Content: llmtest.Contract("Nothing happens on a typed yes.", 0.9)})
	post(t, p.base, webhookBody("k2", "c-1", "yes", signedIn()))
	if len(api.made()) != 0 {
		t.Fatalf("a typed yes called %q", api.made())
	}

	fake.Enqueue(llmtest.Reply{Content: llmtest.Contract("Order 1234 is cancelled; 59.90 EUR will be refunded.", 0.9)})
	first := click("k3", "c-1", token)
	if !strings.Contains(first, "is cancelled") || len(api.made()) != 1 || api.made()[0] != "POST /orders/1234/cancel {}" {
		t.Fatalf("yes: %s; API %q", first, api.made())
	}
	if note := fmt.Sprint(fake.Last(t).Chat.Messages); !strings.Contains(note, `It was done; the service answered: {"result":{"refund":"59.90 EUR","status":"cancelled"},"status":200}`) {
		t.Errorf("the model was told %s", note)
	}
	if again := click("k3", "c-1", token); again != first {
		t.Errorf("Kommunicate's retry got %s", again)
	}
	if second := click("k4", "c-1", token); !strings.Contains(second, "That was already done.") {
		t.Errorf("a second click got %s", second)
	}
	if other := click("k5", "c-2", token); !strings.Contains(other, "no longer valid") {
		t.Errorf("another conversation got %s", other)
	}
	body, sig, _ := strings.Cut(token, ".")
	if forged := click("k6", "c-1", strings.Replace(body, "M", "N", 1)+"."+sig); !strings.Contains(forged, "no longer valid") {
		t.Errorf("a changed token got %s", forged)
	}
	old := action.NewPending("cancel_order", map[string]any{"order_id": "5678"}, "c-1", "u-42", time.Now().Add(-time.Hour), 10*time.Minute)
	if expired := click("k7", "c-1", action.Sign([]byte("c0nfirm-secret"), old)); !strings.Contains(expired, "no longer valid") {
		t.Errorf("an expired token got %s", expired)
	}
	if no := click("k8", "c-1", "no"); !strings.Contains(no, "I haven't changed anything") {
		t.Errorf("no got %s", no)
	}
	if calls := api.made(); len(calls) != 1 {
		t.Errorf("the API was called %d times: %q", len(calls), calls)
	}
}

// A confirmation runs only for the user it was offered to, for an action
// without identity too: another user of the conversation pressing Yes (or
// sending its token) runs nothing.
func TestConfirmationStaysWithItsUser(t *testing.T) {
	fake, api := llmtest.New(t), newBusinessAPI(t)
	path := actionsConfig(t, fake, api)
	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(data), "    identity: required\n", "", 1)), 0o600)
	p := startProcess(t, path, env(map[string]string{"ACME_TOKEN": apiToken}))
	fake.Enqueue(llmtest.Reply{ToolCalls: []openai.ToolCall{llmtest.Call("c", "cancel_order", `{"order_id":"1234"}`)}},
		llmtest.Reply{Content: llmtest.Contract("Please confirm below.", 0.9)})
	offer := post(t, p.base, webhookBody("k1", "c-1", "Cancel order 1234", nil))
	var out []struct {
		Metadata struct {
			Payload []struct {
				ReplyMetadata map[string]string `json:"replyMetadata"`
			} `json:"payload"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(offer), &out); err != nil || len(out) != 2 || len(out[1].Metadata.Payload) != 2 {
		t.Fatalf("offer: %s", offer)
	}
	token := out[1].Metadata.Payload[0].ReplyMetadata["kommbridge_confirm"]
	press := webhookBody("k2", "c-1", "Yes", map[string]any{"kommbridge_confirm": token, "kommbridge_button": "confirm"})
	if other := post(t, p.base, strings.Replace(press, `"from":"u-42"`, `"from":"u-7"`, 1)); !strings.Contains(other, "no longer valid") {
		t.Errorf("another user's press got %s", other)
	}
	if calls := api.made(); len(calls) != 0 {
		t.Fatalf("another user's press called %q", calls)
	}
	fake.Enqueue(llmtest.Reply{Content: llmtest.Contract("Order 1234 is cancelled.", 0.9)})
	if own := post(t, p.base, strings.Replace(press, `"key":"k2"`, `"key":"k3"`, 1)); !strings.Contains(own, "is cancelled") || len(api.made()) != 1 {
		t.Errorf("the user's own press got %s; API %q", own, api.made())
	}
}

// eval suites stub the actions (no real API is called), expect calls and
// the absence of runs, and press confirmations.
func TestEvalActions(t *testing.T) {
	fake, api := llmtest.New(t), newBusinessAPI(t)
	fake.Default(func(r llmtest.Request) llmtest.Reply {
		msgs := r.Chat.Messages
		last := msgs[len(msgs)-1]
		switch {
		case strings.Contains(last.Content, `"status":"cancelled"`):
			return llmtest.Reply{Content: llmtest.Contract("Cancelled.", 0.9)}
		case last.Role == "user" && strings.Contains(last.Content, "Where is my order"):
			return llmtest.Reply{ToolCalls: []openai.ToolCall{llmtest.Call("c1", "order_status", `{"order_id":"1234"}`)}}
		case last.Role == "user" && strings.Contains(last.Content, "Cancel order"):
			return llmtest.Reply{ToolCalls: []openai.ToolCall{llmtest.Call("c2", "cancel_order", `{"order_id":"1234"}`)}}
		case last.Role == "tool" && strings.Contains(last.Content, "shipped"):
			return llmtest.Reply{Content: llmtest.Contract("Order 1234 has shipped.", 0.9)}
		case last.Role == "tool":
			return llmtest.Reply{Content: llmtest.Contract("Please confirm below.", 0.9)}
		}
		return llmtest.Reply{Content: llmtest.Contract("Hm.", 0.9)}
	})
	path := actionsConfig(t, fake, api)
	suite := filepath.Join(t.TempDir(), "actions.yaml")
	os.WriteFile(suite, []byte(fmt.Sprintf(`
actions:
  order_status: {status: 200, body: {status: shipped, carrier: DHL, eta: "2026-12-05", margin: 0.4}}
  cancel_order:
    - args: {order_id: "1234"}
      body: {status: cancelled}
cases:
  - name: looks up the order
    turns:
      - user: "Where is my order 1234?"
        expect: {calls: [{action: order_status, args: {order_id: "1234"}}], contains: ["shipped"]}
  - name: cancels only on yes
    context: {kommbridge_user_sig: %q}
    turns:
      - user: "Cancel order 1234"
        expect: {calls: [{action: cancel_order}], no_calls: [cancel_order]}
      - press: "yes"
        expect: {contains: ["Cancelled"]}
  - name: expects no lookup
    turns:
      - user: "Where is my order 1234?"
        expect: {no_calls: [order_status]}
`, action.SignUser("id-secret", "eval-user"))), 0o644)
	var buf bytes.Buffer
	err := run(t.Context(), []string{"eval", "--config", path, suite}, env(map[string]string{"ACME_TOKEN": apiToken}), nil, &buf, &buf)
	out := buf.String()
	if err == nil || !strings.Contains(out, "2/3 cases") || !strings.Contains(out, "no_calls: order_status ran") {
		t.Errorf("%v\n%s", err, out)
	}
	if calls := api.made(); len(calls) != 0 {
		t.Errorf("eval called the real API: %q", calls)
	}
}

// check lists the actions and, with --probe, calls a GET action with its
// example arguments.
func TestCheckActions(t *testing.T) {
	fake, api := llmtest.New(t), newBusinessAPI(t)
	path := actionsConfig(t, fake, api)
	data, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(data), "    response_fields: [status, carrier, eta]", "    response_fields: [status, carrier, eta]\n    example: {order_id: \"1234\"}", 1)), 0o600)
	var out bytes.Buffer
	err := run(t.Context(), []string{"check", "--config", path, "--probe"}, env(map[string]string{"ACME_TOKEN": apiToken}), nil, &out, &out)
	for _, want := range []string{
		"ok    action order_status: GET " + api.URL + "/orders/{order_id} (reads; 3 fields to the model; headers Authorization from actions[0].headers.Authorization)",
		"ok    action cancel_order: POST " + api.URL + "/orders/{order_id}/cancel (changes data: runs on the user's Yes;",
		`ok    action order_status with map[order_id:1234]: HTTP 200 in `,
		`the model would see {"result":{"carrier":"DHL","eta":"2026-12-05","status":"shipped"},"status":200}`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q (%v):\n%s", want, err, out.String())
		}
	}
	if calls := api.made(); len(calls) != 1 || calls[0] != "GET /orders/1234" {
		t.Errorf("probe calls %q (the POST action must not be probed)", calls)
	}
}

// An OpenAPI operation becomes an action block that loads as it is: the
// server and path, the parameters' schema, the bearer header from the
// environment, the answer's fields, and a confirm for a write.
func TestActionsImport(t *testing.T) {
	get, err := runCmd(t, "actions", "import", "testdata/orders.openapi.yaml", "--operation", "getOrder")
	if err != nil {
		t.Fatal(get)
	}
	for _, want := range []string{"- name: get_order", "url: https://api.acme.example/v1/orders/{orderId}", "pattern: ^[0-9]{4,10}$",
		"Authorization: Bearer ${ACME_TOKEN}", "- carrier\n", "- eta\n", "- status\n"} {
		if !strings.Contains(get, want) {
			t.Errorf("missing %q:\n%s", want, get)
		}
	}
	post, _ := runCmd(t, "actions", "import", "testdata/orders.openapi.yaml", "--operation", "cancelOrder")
	if !strings.Contains(post, "method: POST") || !strings.Contains(post, "confirm: Cancel an order that has not shipped? ({orderId})") || !strings.Contains(post, "reason:") {
		t.Errorf("cancel:\n%s", post)
	}
	// Both blocks load as configuration.
	indent := func(s string) string {
		var lines []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(l, "#") && l != "" {
				lines = append(lines, "  "+l)
			}
		}
		return strings.Join(lines, "\n")
	}
	path := writeConfig(t, "actions:\n"+indent(get)+"\n"+indent(post)+"\n")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"check", "--offline", "--config", path}, env(map[string]string{"ACME_TOKEN": "t"}), nil, &out, &out); err != nil || !strings.Contains(out.String(), "ok    config") {
		t.Errorf("the imported actions do not load: %v\n%s", err, out.String())
	}
	if out, err := runCmd(t, "actions", "import", "testdata/orders.openapi.yaml", "--operation", "nope"); err == nil || !strings.Contains(out, "cancelOrder, getOrder") {
		t.Errorf("an unknown operation: %v %s", err, out)
	}
}

// try shows each action call, what the model was told, and presses a
// confirmation with /yes.
func TestTryShowsActions(t *testing.T) {
	fake, api := llmtest.New(t), newBusinessAPI(t)
	fake.Enqueue(llmtest.Reply{ToolCalls: []openai.ToolCall{llmtest.Call("c1", "order_status", `{"order_id":"1234"}`)}},
		llmtest.Reply{Content: llmtest.Contract("It shipped.", 0.9)},
		llmtest.Reply{ToolCalls: []openai.ToolCall{llmtest.Call("c2", "cancel_order", `{"order_id":"1234"}`)}},
		llmtest.Reply{Content: llmtest.Contract("Please confirm.", 0.9)},
		llmtest.Reply{Content: llmtest.Contract("Cancelled.", 0.9)})
	stdin := strings.NewReader("where is my order 1234?\n/context kommbridge_user_sig=" + action.SignUser("id-secret", "try-user") + "\ncancel it\n/yes\n/quit\n")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"try", "--config", actionsConfig(t, fake, api)}, env(map[string]string{"ACME_TOKEN": apiToken}), stdin, &out, &out); err != nil {
		t.Fatal(err, out.String())
	}
	for _, want := range []string{
		`-> order_status {"order_id":"1234"}: ok, HTTP 200 in `,
		`the model was told: {"result":{"carrier":"DHL","eta":"2026-12-05","status":"shipped"},"status":200}`,
		`-> cancel_order {"order_id":"1234"}: awaiting_confirmation`,
		"bot> Cancel order 1234?", "[Yes: /yes] [No: /no]",
		`-> cancel_order {"order_id":"1234"}: ok, HTTP 200 in `, "bot> Cancelled.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q:\n%s", want, out.String())
		}
	}
	if calls := api.made(); len(calls) != 2 || calls[1] != "POST /orders/1234/cancel {}" {
		t.Errorf("API calls %q", calls)
	}
}
