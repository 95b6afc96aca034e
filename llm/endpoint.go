package llm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// endpoint is one OpenAI-compatible API and how it is called: its URLs,
// its key and extra headers (which go to it alone), its breaker.
type endpoint struct {
	name    string // host, for logs and metrics
	base    string // base URL without a trailing slash
	model   string
	key     string
	azure   bool
	version string // Azure's api-version
	headers http.Header
	// retries are this endpoint's retries after a failed try: the
	// client's, or 0 behind a gateway that retries itself.
	retries int
	tokens  tokenField
	hc      *http.Client
	maxBody int64
	breaker *breaker
	// usual is how long its calls recently took.
	usual latencies
}

// DefaultMaxResponseBytes bounds an answer read from a model endpoint
// (llm.max_response_bytes): a chat completion is a few kilobytes, a
// model list some hundreds.
const DefaultMaxResponseBytes = 4 << 20

// maxErrorBody bounds the bytes read of an error answer.
const maxErrorBody = 64 << 10

// url is the endpoint's URL for an API path ("/chat/completions"); Azure
// names the deployment in the path and the version in the query.
func (ep *endpoint) url(path, model string) string {
	if ep.azure {
		if path == "/models" {
			return ep.base + "/openai/models?api-version=" + url.QueryEscape(ep.version)
		}
		return ep.base + "/openai/deployments/" + url.PathEscape(model) + path + "?api-version=" + url.QueryEscape(ep.version)
	}
	return ep.base + path
}

// do sends one request to the endpoint and reads its answer, at most
// maxBody bytes of it. A status other than 2xx is an *httpError with the
// server's own words for it.
func (ep *endpoint) do(ctx context.Context, method, path, model, contentType string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, ep.url(path, model), rd)
	if err != nil {
		return nil, err
	}
	for k, v := range ep.headers {
		req.Header[k] = v
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	switch {
	case ep.key == "":
	case ep.azure:
		req.Header.Set("Api-Key", ep.key)
	default:
		req.Header.Set("Authorization", "Bearer "+ep.key)
	}
	resp, err := ep.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		text, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		e := &httpError{status: resp.StatusCode, retryAfter: retryAfter(resp.Header, time.Now()), gatewayRetried: gatewayRetried(resp.Header)}
		e.msg, e.code = errorText(text)
		e.msg = ep.withoutSecrets(e.msg)
		return nil, e
	}
	return readCapped(resp, ep.maxBody)
}

// withoutSecrets is s with the endpoint's key and header values replaced,
// should a server echo them in an error.
func (ep *endpoint) withoutSecrets(s string) string {
	secrets := []string{ep.key}
	for _, v := range ep.headers {
		secrets = append(secrets, v...)
	}
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

// errTooLarge is an answer over the endpoint's size cap.
var errTooLarge = errors.New("the answer is larger than llm.max_response_bytes")

// readCapped reads resp's body into one buffer of its declared length (a
// hint only), failing once more than max bytes come.
func readCapped(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("%w (%d bytes declared, cap %d)", errTooLarge, resp.ContentLength, limit)
	}
	buf := bytes.NewBuffer(make([]byte, 0, min(max(resp.ContentLength, 0), 1<<20)+bytes.MinRead))
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, fmt.Errorf("%w (cap %d bytes)", errTooLarge, limit)
	}
	return buf.Bytes(), nil
}

// chat is one chat completion with a prepared body.
func (ep *endpoint) chat(ctx context.Context, model string, body []byte) (Response, error) {
	answer, err := ep.do(ctx, http.MethodPost, "/chat/completions", model, "application/json", body)
	if err != nil {
		return Response{}, err
	}
	return decodeChat(answer)
}

// models lists the endpoint's model ids.
func (ep *endpoint) models(ctx context.Context) ([]string, error) {
	answer, err := ep.do(ctx, http.MethodGet, "/models", "", "", nil)
	if err != nil {
		return nil, err
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(answer, &list); err != nil {
		return nil, &malformed{err: err, body: answer}
	}
	ids := make([]string, len(list.Data))
	for i, m := range list.Data {
		ids[i] = m.ID
	}
	return ids, nil
}

// transcribe posts audio to /audio/transcriptions as a multipart form.
func (ep *endpoint) transcribe(ctx context.Context, model, filename string, audio []byte) (string, error) {
	var b bytes.Buffer
	w := multipart.NewWriter(&b)
	fw, err := w.CreateFormFile("file", filename)
	if err != nil {
		return "", err
	}
	fw.Write(audio)
	w.WriteField("model", model)
	w.WriteField("response_format", "json")
	if err := w.Close(); err != nil {
		return "", err
	}
	answer, err := ep.do(ctx, http.MethodPost, "/audio/transcriptions", model, w.FormDataContentType(), b.Bytes())
	if err != nil {
		return "", err
	}
	var t struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(answer, &t); err != nil {
		return "", &malformed{err: err, body: answer}
	}
	return t.Text, nil
}

// httpError is an answer with a status other than 2xx.
type httpError struct {
	status     int
	retryAfter time.Duration // 0 when the server did not say
	msg, code  string
	// gatewayRetried: a gateway in front of the model says it retried.
	gatewayRetried bool
}

func (e *httpError) Error() string {
	if e.code != "" {
		return fmt.Sprintf("HTTP %d (code %s): %s", e.status, e.code, e.msg)
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.msg)
}

func retryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseFloat(h.Get("Retry-After-Ms"), 64); err == nil && ms > 0 {
		return time.Duration(ms * float64(time.Millisecond))
	}
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// gatewayRetryHeaders are the headers by which gateways say how often
// they retried a request upstream: LiteLLM, Portkey, and a generic one.
var gatewayRetryHeaders = []string{"X-Litellm-Attempted-Retries", "X-Portkey-Retry-Attempt-Count", "X-Gateway-Retries"}

// gatewayRetried reports whether a gateway says it retried the request.
func gatewayRetried(h http.Header) bool {
	for _, k := range gatewayRetryHeaders {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Get(k))); err == nil && n > 0 {
			return true
		}
	}
	return false
}

// SameOrigin is the redirect policy of a request that carries a key: a
// redirect is followed only within the origin it was sent to (scheme,
// host and port), at most 3 times, so the key and the extra headers never
// go anywhere else, another port or plain http of the same host included.
// Model endpoints and actions (package action) follow it.
func SameOrigin(req *http.Request, via []*http.Request) error {
	switch {
	case len(via) > 3:
		return fmt.Errorf("%w: stopped after 3", errRedirect)
	case origin(req.URL) != origin(via[0].URL):
		return fmt.Errorf("%w to %s: a key goes only to the endpoint it was written for", errRedirect, origin(req.URL))
	}
	return nil
}

// errRedirect is a redirect not followed.
var errRedirect = errors.New("redirect not followed")

// origin is u's scheme, host and port (the scheme's default when unset).
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return u.Scheme + "://" + strings.ToLower(u.Hostname()) + ":" + port
}
