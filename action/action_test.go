package action_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge/action"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/media"
)

// api is a fake business API that records what it was sent.
type api struct {
	*httptest.Server
	got []*http.Request
	// bodies are the request bodies, in order.
	bodies []string
	answer func(w http.ResponseWriter, r *http.Request)
}

func newAPI(t *testing.T) *api {
	a := &api{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		a.got = append(a.got, r)
		a.bodies = append(a.bodies, string(b))
		if a.answer != nil {
			a.answer(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"shipped","carrier":"DHL","eta":"2026-12-05","internal":{"warehouse":"L3","margin":0.4},"items":[{"name":"Tent","sku":"T1"},{"name":"Boots","sku":"B2"}],"echo":"Bearer s3cret-token"}`))
	}))
	t.Cleanup(a.Close)
	return a
}

func runner(t *testing.T, a *api, tweak func(*config.Action)) *action.Runner {
	t.Helper()
	u, _ := url.Parse(a.URL)
	act := config.Action{Name: "order_status", Description: "Look up an order.", Method: config.MethodGet, URL: a.URL + "/orders/{order_id}",
		Parameters:     config.Schema{JSON: json.RawMessage(`{"type":"object","properties":{"order_id":{"type":"string","pattern":"^[0-9]{4,10}$"}},"required":["order_id"]}`)},
		Headers:        map[string]string{"Authorization": "Bearer s3cret-token"},
		ResponseFields: []string{"status", "carrier", "eta", "items.name"}, Timeout: config.Duration(time.Second), MaxResponseBytes: 1 << 20}
	if tweak != nil {
		tweak(&act)
	}
	r, err := action.New([]config.Action{act}, media.FetchOptions{AllowedHosts: []string{u.Host}})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A call reaches the declared URL with the declared headers, and the model
// sees only the declared fields, the secret taken out.
func TestCallShowsOnlyDeclaredFields(t *testing.T) {
	a := newAPI(t)
	r := runner(t, a, func(c *config.Action) { c.ResponseFields = append(c.ResponseFields, "echo") })
	args, err := r.Spec("order_status").Args(`{"order_id":"1234"}`)
	if err != nil {
		t.Fatal(err)
	}
	out := r.Do(context.Background(), "order_status", args)
	if out.Kind != action.KindOK || len(a.got) != 1 || a.got[0].URL.Path != "/orders/1234" || a.got[0].Header.Get("Authorization") != "Bearer s3cret-token" {
		t.Fatalf("%+v %v", out, a.got)
	}
	want := `{"result":{"carrier":"DHL","echo":"[redacted]","eta":"2026-12-05","items":[{"name":"Tent"},{"name":"Boots"}],"status":"shipped"},"status":200}`
	if got := out.ToolContent(); got != want {
		t.Errorf("tool content:\n got %s\nwant %s", got, want)
	}
	if s := out.Summary(args); s != "(order_status for order_id 1234: carrier: DHL; echo: [redacted]; eta: 2026-12-05; items[0].name: Tent; items[1].name: Boots; status: shipped)" {
		t.Errorf("summary %q", s)
	}
}

// Arguments can neither change the host nor add a path segment: each is
// escaped into its one segment or query value, and "." or ".." refused.
func TestArgumentsStayInTheirPlace(t *testing.T) {
	a := newAPI(t)
	r := runner(t, a, func(c *config.Action) {
		c.URL = a.URL + "/orders/{order_id}/items?q={q}"
		c.Parameters = config.Schema{JSON: json.RawMessage(`{"type":"object","properties":{"order_id":{"type":"string"},"q":{"type":"string"},"page":{"type":"integer"}},"required":["order_id"]}`)}
	})
	s := r.Spec("order_status")
	for _, tt := range []struct {
		args string
		want string // the URL after the host, or an error
	}{
		{`{"order_id":"1234/../admin","q":"a&b=c","page":2}`, "/orders/1234%2F..%2Fadmin/items?q=a%26b%3Dc&page=2"},
		{`{"order_id":"1234?x=1#f","q":""}`, "/orders/1234%3Fx=1%23f/items?q="},
		{`{"order_id":"@evil.example","q":"x"}`, "/orders/@evil.example/items?q=x"},
		{`{"order_id":"..","q":"x"}`, "error"},
		{`{"order_id":"","q":"x"}`, "error"},
	} {
		args, err := s.Args(tt.args)
		if err != nil {
			t.Fatal(err)
		}
		u, _, err := s.URL(args)
		got := strings.TrimPrefix(u, a.URL)
		if err != nil {
			got = "error"
		}
		if got != tt.want {
			t.Errorf("%s: %q, want %q", tt.args, got, tt.want)
		}
		if err == nil {
			if pu, _ := url.Parse(u); pu.Host != strings.TrimPrefix(a.URL, "http://") {
				t.Errorf("%s: host %s", tt.args, pu.Host)
			}
		}
	}
}

// The schema refuses what does not fit, saying why; nothing is called.
func TestArgumentsChecked(t *testing.T) {
	a := newAPI(t)
	s := runner(t, a, nil).Spec("order_status")
	for _, raw := range []string{`{"order_id":"12"}`, `{"order_id":"1234/../admin"}`, `{}`, `not json`, `{"order_id":1234}`} {
		if _, err := s.Args(raw); err == nil {
			t.Errorf("%s accepted", raw)
		}
	}
	if len(a.got) != 0 {
		t.Errorf("the API was called")
	}
}

// Faults are outcomes the model can explain: a non-2xx, a hang past the
// timeout, an answer that is not JSON or too large, a redirect to another
// host; none is an error of kommbridge's.
func TestCallFaults(t *testing.T) {
	other := newAPI(t)
	for _, tt := range []struct {
		name   string
		answer func(w http.ResponseWriter, r *http.Request)
		kind   string
	}{
		{"404", func(w http.ResponseWriter, r *http.Request) { http.Error(w, `{"error":"no such order"}`, 404) }, action.KindHTTPError},
		{"hang", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, action.KindTimeout},
		{"html", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>oops</html>")) }, action.KindBadAnswer},
		{"huge", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"x":"` + strings.Repeat("a", 2<<20) + `"}`))
		}, action.KindBadAnswer},
		{"redirect away", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
		}, action.KindUnreachable},
	} {
		a := newAPI(t)
		a.answer = tt.answer
		r := runner(t, a, func(c *config.Action) { c.Timeout = config.Duration(200 * time.Millisecond) })
		out := r.Do(context.Background(), "order_status", map[string]any{"order_id": "1234"})
		if out.Kind != tt.kind || out.Err == "" || !strings.Contains(out.ToolContent(), `"error"`) {
			t.Errorf("%s: %+v", tt.name, out)
		}
	}
	if len(other.got) != 0 {
		t.Error("a redirect was followed to another host")
	}
	// A redirect within the API's own origin is followed.
	a := newAPI(t)
	a.answer = func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/orders/1234" {
			http.Redirect(w, r, "/v2/orders/1234", http.StatusMovedPermanently)
			return
		}
		w.Write([]byte(`{"status":"shipped"}`))
	}
	if out := runner(t, a, nil).Do(context.Background(), "order_status", map[string]any{"order_id": "1234"}); out.Kind != action.KindOK || len(a.got) != 2 || a.got[1].Header.Get("Authorization") != "Bearer s3cret-token" {
		t.Errorf("a redirect within the API: %+v after %d requests", out, len(a.got))
	}
}

// A confirmation token names the action and its exact arguments, for one
// conversation, until it expires; a changed or forged one opens nothing.
func TestTokens(t *testing.T) {
	secret := []byte("k")
	now := time.Unix(1_800_000_000, 0)
	p := action.NewPending("cancel_order", map[string]any{"order_id": "1234"}, "conv-1", "u-1", now, 10*time.Minute)
	tok := action.Sign(secret, p)
	got, err := action.Open(secret, tok, now.Add(time.Minute))
	if err != nil || got.Action != "cancel_order" || got.Conv != "conv-1" || got.Arguments()["order_id"] != "1234" {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := action.Open(secret, tok, now.Add(11*time.Minute)); err != action.ErrExpired {
		t.Errorf("expired: %v", err)
	}
	if _, err := action.Open([]byte("other"), tok, now); err != action.ErrForged {
		t.Errorf("another secret: %v", err)
	}
	body, sig, _ := strings.Cut(tok, ".")
	changed := strings.Replace(body, "c", "d", 1) + "." + sig
	for _, bad := range []string{changed, "x", "", body + ".", "." + sig} {
		if _, err := action.Open(secret, bad, now); err != action.ErrForged {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// The arguments a Yes runs with are the ones offered, to the digit,
	// whatever JSON numbers a float64 would round.
	big, err := action.Open(secret, action.Sign(secret, action.NewPending("cancel_order", map[string]any{"order_id": json.Number("12345678901234567")}, "conv-1", "u-1", now, time.Minute)), now)
	if err != nil {
		t.Fatal(err)
	}
	if u, _, err := runner(t, newAPI(t), nil).Spec("order_status").URL(big.Arguments()); err != nil || !strings.HasSuffix(u, "/orders/12345678901234567") {
		t.Errorf("a large order number came back as %q (%v)", u, err)
	}
	if action.NewPending("a", nil, "c", "u", now, time.Minute).Nonce == p.Nonce {
		t.Error("two offers share a nonce")
	}
}

// The website vouches for a user with the HMAC of the user id.
func TestIdentity(t *testing.T) {
	sig := action.SignUser("shared", "u-42")
	if !action.Verified("shared", "u-42", sig) || action.Verified("shared", "u-43", sig) || action.Verified("other", "u-42", sig) ||
		action.Verified("", "u-42", action.SignUser("", "u-42")) || action.Verified("shared", "", "") {
		t.Error("identity")
	}
}

// An action's limit refuses calls past it, without reaching the API.
func TestLimit(t *testing.T) {
	a := newAPI(t)
	r := runner(t, a, func(c *config.Action) { c.Limit.Per, c.Limit.Burst = 0.001, 2 })
	var kinds []string
	for range 3 {
		kinds = append(kinds, r.Do(context.Background(), "order_status", map[string]any{"order_id": "1234"}).Kind)
	}
	if strings.Join(kinds, " ") != "ok ok limited" || len(a.got) != 2 {
		t.Errorf("%v, %d calls", kinds, len(a.got))
	}
}
