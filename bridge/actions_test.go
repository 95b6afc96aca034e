package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/llm"
)

// actionBridge is a bridge whose "*" bot may call order_status on api.
func actionBridge(t *testing.T, m Model, d Deps, api string) *Bridge {
	t.Helper()
	u, _ := url.Parse(api)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
media: {allowed_hosts: [%q]}
actions:
  - name: order_status
    description: Look up an order.
    url: %s/orders/{order_id}
    parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
    response_fields: [status]
bots:
  - id: "*"
    actions: [order_status]
`, u.Host, api)), "test.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.ReplyBudget = config.Duration(2 * time.Second)
	d.Model = m
	if d.Store == nil {
		d.Store = newStore()
	}
	b, err := New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// After a context overflow the action loop goes on with the shortened
// request: the model's tool call and its result are added to what fitted,
// not to the request that did not.
func TestActionsAfterAContextOverflow(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"status":"shipped"}`))
	}))
	defer api.Close()
	st := newStore()
	ctx := context.Background()
	var sizes []int
	const fits = 8 // messages the fake model's context holds
	m := &scripted{}
	m.answer = func(context.Context) (llm.Response, error) {
		msgs := m.last.Messages
		sizes = append(sizes, len(msgs))
		switch {
		case len(msgs) > fits:
			return llm.Response{}, &llm.Error{Kind: llm.ErrContextOverflow, Err: errors.New("maximum context length")}
		case msgs[len(msgs)-1].Role == llm.RoleUser:
			return llm.Response{ToolCalls: []llm.ToolCall{{ID: "c1", Name: "order_status", Arguments: `{"order_id":"1234"}`}}}, nil
		}
		return says("It shipped.")(ctx)
	}
	b := actionBridge(t, m, Deps{Store: st}, api.URL)
	for range 4 {
		st.Append(ctx, "bot/c1", kommbridge.Turn{Role: "user", Text: "old"}, kommbridge.Turn{Role: "assistant", Text: "old answer"})
	}
	r, _ := b.Handle(ctx, message("k1", "where is order 1234?"))
	if r.Outcome != kommbridge.OutcomeAnswered || len(r.Messages) != 1 || r.Messages[0].Text != "It shipped." {
		t.Errorf("outcome %q %+v (%v)", r.Outcome, r.Messages, r.Err)
	}
	// system + 8 turns + user = 10; system + the 4 newest + user = 6; then
	// the tool call and its result on top of those 6.
	if len(sizes) != 3 || sizes[0] != 10 || sizes[1] != 6 || sizes[2] != 8 {
		t.Errorf("request sizes %v, want [10 6 8]", sizes)
	}
}
