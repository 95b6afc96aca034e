package llm_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// An endpoint's extra headers go with every request to it, and to no
// other endpoint: a gateway that wants its own headers (Portkey) answers,
// the fallback never sees them.
func TestEndpointHeaders(t *testing.T) {
	gateway, fallback := llmtest.New(t), llmtest.New(t)
	gateway.Default(func(r llmtest.Request) llmtest.Reply {
		if r.Header.Get("X-Portkey-Api-Key") != "pk-secret" || r.Header.Get("X-Portkey-Provider") != "openai" {
			return llmtest.Reply{Status: 400, Body: `{"status":"failure","message":"x-portkey-provider header is required"}`}
		}
		return llmtest.Reply{Content: "via portkey"}
	})
	c, err := llm.New(llm.Config{Endpoints: []llm.Endpoint{
		{BaseURL: gateway.URL(), Model: "m", Headers: map[string]string{"x-portkey-api-key": "pk-secret", "X-Portkey-Provider": "openai"}},
		{BaseURL: fallback.URL(), Model: "m"},
	}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Complete(within(t, 5*time.Second), hello)
	if err != nil || resp.Content != "via portkey" {
		t.Fatalf("%q %v", resp.Content, err)
	}
	// Without the headers, the gateway's own words say why.
	bare, _ := llm.New(llm.Config{Endpoints: []llm.Endpoint{{BaseURL: gateway.URL(), Model: "m"}}}, zap.NewNop())
	_, err = bare.Complete(within(t, 5*time.Second), hello)
	var e *llm.Error
	if !errors.As(err, &e) || !strings.Contains(err.Error(), "x-portkey-provider header is required") || e.Model != "m" {
		t.Errorf("error %v", err)
	}
	// The fallback never gets the gateway's headers.
	gateway.Default(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Status: 503} })
	if _, err := c.Complete(within(t, 5*time.Second), hello); err != nil {
		t.Fatal(err)
	}
	if h := fallback.Last(t).Header; h.Get("X-Portkey-Api-Key") != "" || h.Get("X-Portkey-Provider") != "" {
		t.Errorf("the fallback got the gateway's headers: %v", h)
	}
}

// retryingProxy stands for a gateway that retries 429s upstream by
// itself (as GOModel does), n times, then passes the last answer on.
func retryingProxy(t *testing.T, upstream string, n int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var resp *http.Response
		for i := 0; i <= n; i++ {
			req, _ := http.NewRequest(r.Method, upstream+strings.TrimPrefix(r.URL.Path, "/v1"), strings.NewReader(string(body)))
			req.Header = r.Header.Clone()
			var err error
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			if resp.StatusCode != http.StatusTooManyRequests || i == n {
				break
			}
			resp.Body.Close()
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Behind a gateway that retries by itself, kommbridge does not retry on
// top: with gateway_retries the upstream gets the gateway's tries only,
// and the user waits for one round of them; a gateway that says it
// retried (its response headers) is not retried either.
func TestNoRetriesStackedOnAGateways(t *testing.T) {
	upstream := llmtest.New(t)
	upstream.Default(func(llmtest.Request) llmtest.Reply { return llmtest.Reply{Status: 429, RetryAfter: "0.05"} })
	proxy := retryingProxy(t, upstream.URL(), 2)
	for _, tt := range []struct {
		name    string
		gateway bool
		want    int // upstream calls
	}{
		{"retries stacked (the old way)", false, 9},
		{"gateway_retries", true, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := upstream.Calls()
			c, _ := llm.New(llm.Config{Endpoints: []llm.Endpoint{{BaseURL: proxy.URL + "/v1", Model: "m", GatewayRetries: tt.gateway}}, MaxRetries: 2}, zap.NewNop())
			_, err := c.Complete(within(t, 10*time.Second), hello)
			if !errors.Is(err, llm.ErrUnavailable) {
				t.Fatalf("error %v", err)
			}
			if got := upstream.Calls() - before; got != tt.want {
				t.Errorf("upstream calls %d, want %d", got, tt.want)
			}
		})
	}
	t.Run("a gateway that says it retried", func(t *testing.T) {
		fake := llmtest.New(t)
		fake.Default(func(llmtest.Request) llmtest.Reply {
			return llmtest.Reply{Status: 429, Header: http.Header{"X-Litellm-Attempted-Retries": {"2"}}, Body: `{"error":{"message":"RateLimitError: upstream 429"}}`}
		})
		c := newClient(t, 2, fake.URL())
		_, err := c.Complete(within(t, 10*time.Second), hello)
		var e *llm.Error
		if !errors.As(err, &e) || !e.GatewayRetried || fake.Calls() != 1 {
			t.Errorf("calls %d, error %v", fake.Calls(), err)
		}
	})
}

// An answer larger than llm.max_response_bytes fails that call cleanly:
// read no further than the cap, whatever it declares or streams.
func TestAnswerCapped(t *testing.T) {
	fake := llmtest.New(t)
	fake.Enqueue(llmtest.Reply{Huge: 100 << 20})
	c, _ := llm.New(llm.Config{Endpoints: []llm.Endpoint{{BaseURL: fake.URL(), Model: "m"}}, MaxResponseBytes: 1 << 20}, zap.NewNop())
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := c.Complete(within(t, 10*time.Second), hello)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, llm.ErrMalformed) || !strings.Contains(err.Error(), "larger than llm.max_response_bytes") {
		t.Errorf("error %v", err)
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 16<<20 {
		t.Errorf("allocated %d MB reading a 100 MB answer under a 1 MB cap", grown>>20)
	}
}

// A redirect is followed within the endpoint's own origin only: the key
// never goes to another host or another port of the same host.
func TestRedirectsKeepKeysHome(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		io.WriteString(w, `{"choices":[{"message":{"content":"stolen"}}]}`)
	}))
	defer other.Close()
	fake := llmtest.New(t)
	fake.RequireKey("k")
	fake.Enqueue(llmtest.Reply{Status: http.StatusTemporaryRedirect, Header: http.Header{"Location": {fake.URL() + "/chat/completions"}}, Body: " "})
	c := newClient(t, 0, fake.URL())
	if resp, err := c.Complete(within(t, 5*time.Second), hello); err != nil || resp.Content != "ok" {
		t.Fatalf("same origin: %q %v", resp.Content, err)
	}
	fake.Enqueue(llmtest.Reply{Status: http.StatusTemporaryRedirect, Header: http.Header{"Location": {other.URL + "/v1/chat/completions"}}, Body: " "})
	_, err := c.Complete(within(t, 5*time.Second), hello)
	if !errors.Is(err, llm.ErrRejected) || !strings.Contains(err.Error(), "redirect not followed") {
		t.Errorf("error %v", err)
	}
	if elsewhere.Load() != 0 {
		t.Errorf("the redirect to another port was followed")
	}
}

// A call that cannot get the time the endpoint usually takes is not
// started: the caller gets ErrNoTime (busy for the user), the endpoint
// is not called and its breaker not told. A timeout after less than twice
// that time does not count against the endpoint either.
func TestNoCallThatCannotFinish(t *testing.T) {
	fake := llmtest.New(t)
	fake.Default(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Content: "ok", Delay: 100 * time.Millisecond}
	})
	c, _ := llm.New(llm.Config{Endpoints: []llm.Endpoint{{BaseURL: fake.URL(), Model: "m"}}, BreakerFailures: 1, BreakerCooldown: time.Hour}, zap.NewNop())
	for range 8 {
		if _, err := c.Complete(within(t, 5*time.Second), hello); err != nil {
			t.Fatal(err)
		}
	}
	calls := fake.Calls()
	_, err := c.Complete(within(t, 90*time.Millisecond), hello)
	if !errors.Is(err, llm.ErrNoTime) || !strings.Contains(err.Error(), "usually takes") || fake.Calls() != calls {
		t.Errorf("error %v, calls %d -> %d", err, calls, fake.Calls())
	}
	// Time for the usual answer, not for a slow one: it times out, and the
	// breaker (1 failure opens it) stays closed.
	fake.Enqueue(llmtest.Reply{Content: "slow", Delay: time.Second})
	if _, err := c.Complete(within(t, 200*time.Millisecond), hello); !errors.Is(err, llm.ErrTimeout) {
		t.Errorf("error %v, want a timeout", err)
	}
	if c.Open(0) {
		t.Error("a call cut short of twice the usual time opened the breaker")
	}
}

// SameOrigin follows a redirect within the scheme, host and port a key was
// sent to, and nowhere else.
func TestSameOrigin(t *testing.T) {
	for _, tt := range []struct {
		from, to string
		follow   bool
	}{
		{"https://api.acme.example/v1/chat", "https://api.acme.example/v2/chat", true},
		{"https://api.acme.example/v1", "https://API.acme.example:443/v1", true},
		{"https://api.acme.example/v1", "http://api.acme.example/v1", false},
		{"https://api.acme.example/v1", "https://api.acme.example:8443/v1", false},
		{"https://api.acme.example/v1", "https://evil.example/v1", false},
		{"http://127.0.0.1:8080/v1", "http://127.0.0.1:9090/v1", false},
	} {
		from, _ := http.NewRequest(http.MethodGet, tt.from, nil)
		to, _ := http.NewRequest(http.MethodGet, tt.to, nil)
		if err := llm.SameOrigin(to, []*http.Request{from}); (err == nil) != tt.follow {
			t.Errorf("%s -> %s: %v, want followed %v", tt.from, tt.to, err, tt.follow)
		}
	}
	from, _ := http.NewRequest(http.MethodGet, "https://api.acme.example/", nil)
	if err := llm.SameOrigin(from, []*http.Request{from, from, from, from}); err == nil {
		t.Error("a fourth redirect was followed")
	}
}
