package action

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/time/rate"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/media"
)

// Spec is an action compiled from its configuration.
type Spec struct {
	Name, Description string
	Method            string
	url               string
	Parameters        json.RawMessage
	schema            *jsonschema.Schema
	headers           http.Header
	fields            [][]string
	timeout           time.Duration
	maxBytes          int64
	// Confirm is the confirmation text's template; "" for an action that
	// runs on the model's call.
	Confirm string
	// Identity: the action runs only for a verified user.
	Identity bool
	limiter  *rate.Limiter
	host     string
	// secrets are the header values (and their tokens) taken out of an
	// answer that echoes them.
	secrets []string
}

// Runner makes the calls of a configuration's actions. It is safe for
// concurrent use.
type Runner struct {
	specs map[string]*Spec
	hc    *http.Client
	// Stub, when set, answers calls instead of the API (eval suites);
	// false lets the call through.
	Stub func(name string, args map[string]any) (status int, body []byte, ok bool)
	// Observe hears of every call: its action, its Kind and how long it
	// took.
	Observe func(name, kind string, took time.Duration)
}

// New compiles actions; fetch are media's address rules, which every call
// follows.
func New(actions []config.Action, fetch media.FetchOptions) (*Runner, error) {
	r := &Runner{specs: map[string]*Spec{}}
	for _, a := range actions {
		schema, err := config.CompileSchema(a.Name, a.Parameters.JSON)
		if err != nil {
			return nil, fmt.Errorf("actions %s: parameters: %w", a.Name, err)
		}
		s := &Spec{Name: a.Name, Description: a.Description, Method: string(a.Method), url: a.URL, Parameters: a.Parameters.JSON, schema: schema,
			headers: http.Header{}, timeout: a.Timeout.D(), maxBytes: a.MaxResponseBytes, Confirm: a.Confirm,
			Identity: a.Identity == config.IdentityRequired}
		if u, err := url.Parse(templateVar.ReplaceAllString(a.URL, "x")); err == nil {
			s.host = u.Host
		}
		for k, v := range a.Headers {
			s.headers.Set(k, v)
			for _, secret := range []string{v, tokenOf(v)} {
				if len(secret) >= 6 {
					s.secrets = append(s.secrets, secret)
				}
			}
		}
		for _, f := range a.ResponseFields {
			s.fields = append(s.fields, strings.Split(f, "."))
		}
		if a.Limit.Per > 0 {
			s.limiter = rate.NewLimiter(rate.Limit(a.Limit.Per), max(a.Limit.Burst, 1))
		}
		r.specs[a.Name] = s
	}
	f := media.NewFetcher(fetch)
	r.hc = f.Client(llm.SameOrigin)
	return r, nil
}

// Spec returns the action named name, or nil.
func (r *Runner) Spec(name string) *Spec {
	if r == nil {
		return nil
	}
	return r.specs[name]
}

// Tools are the named actions as tools the model may call.
func (r *Runner) Tools(names []string) []llm.Tool {
	var out []llm.Tool
	for _, n := range names {
		if s := r.Spec(n); s != nil {
			desc := s.Description
			if s.Confirm != "" {
				desc += " (The user confirms it with a button before it runs; until then nothing is done.)"
			}
			out = append(out, llm.Tool{Name: s.Name, Description: desc, Parameters: s.Parameters})
		}
	}
	return out
}

// ErrArgs is arguments the action's schema refuses; the error says why,
// for the model.
var ErrArgs = errors.New("invalid arguments")

// Args decodes and checks a call's arguments against the action's schema.
func (s *Spec) Args(raw string) (map[string]any, error) {
	if strings.TrimSpace(raw) == "" {
		raw = "{}"
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("%w: not JSON: %v", ErrArgs, err)
	}
	if err := s.schema.Validate(doc); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("%w: %s", ErrArgs, strings.Join(strings.Fields(ve.Error()), " "))
		}
		return nil, fmt.Errorf("%w: %v", ErrArgs, err)
	}
	args, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: not an object", ErrArgs)
	}
	return args, nil
}

var templateVar = regexp.MustCompile(`\{([^{}]*)\}`)

// URL builds the call's URL: each {name} of the path is the argument,
// escaped into one path segment ("/" and "?" included; "." and ".." and
// an empty value refused), each of the query the argument escaped as a
// value. Arguments not in the template go to the query of a GET or
// DELETE, and to the JSON body of the rest (body). The host is the
// template's, whatever the arguments.
func (s *Spec) URL(args map[string]any) (u string, body []byte, err error) {
	used := map[string]bool{}
	path, query, _ := strings.Cut(s.url, "?")
	var b strings.Builder
	expand := func(part string, inQuery bool) error {
		last := 0
		for _, m := range templateVar.FindAllStringSubmatchIndex(part, -1) {
			b.WriteString(part[last:m[0]])
			name := part[m[2]:m[3]]
			used[name] = true
			v, err := scalar(args[name])
			switch {
			case err != nil:
				return fmt.Errorf("%w: %s: %v", ErrArgs, name, err)
			case !inQuery && (v == "" || v == "." || v == ".."):
				return fmt.Errorf("%w: %s: %q is no path segment", ErrArgs, name, v)
			case inQuery:
				b.WriteString(url.QueryEscape(v))
			default:
				b.WriteString(url.PathEscape(v))
			}
			last = m[1]
		}
		b.WriteString(part[last:])
		return nil
	}
	if err := expand(path, false); err != nil {
		return "", nil, err
	}
	if query != "" {
		b.WriteByte('?')
		if err := expand(query, true); err != nil {
			return "", nil, err
		}
	}
	rest := map[string]any{}
	for k, v := range args {
		if !used[k] {
			rest[k] = v
		}
	}
	out := b.String()
	if s.Method == http.MethodGet || s.Method == http.MethodDelete {
		q := url.Values{}
		for _, k := range sortedKeys(rest) {
			v, err := scalar(rest[k])
			if err != nil {
				return "", nil, fmt.Errorf("%w: %s: %v", ErrArgs, k, err)
			}
			q.Set(k, v)
		}
		if len(q) > 0 {
			sep := "?"
			if strings.Contains(out, "?") {
				sep = "&"
			}
			out += sep + q.Encode()
		}
	} else if body, err = json.Marshal(rest); err != nil {
		return "", nil, err
	}
	parsed, err := url.Parse(out)
	if err != nil || parsed.Host != s.host {
		return "", nil, fmt.Errorf("%w: the URL would leave %s", ErrArgs, s.host)
	}
	return out, body, nil
}

// scalar is an argument as URL text: strings as they are, numbers and
// booleans as JSON writes them; objects and lists have no place in a URL.
func scalar(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", errors.New("missing")
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		return x.String(), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case int:
		return strconv.Itoa(x), nil
	}
	return "", fmt.Errorf("a %T cannot go into a URL", v)
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Kinds of call outcomes, for metrics and logs.
const (
	KindOK          = "ok"
	KindHTTPError   = "http_error"   // a non-2xx answer
	KindTimeout     = "timeout"      // no answer within the action's timeout
	KindUnreachable = "unreachable"  // refused by the address rules, or the network
	KindBadAnswer   = "bad_answer"   // not JSON, or over max_response_bytes
	KindLimited     = "limited"      // over the action's limit
	KindInvalidArgs = "invalid_args" // the schema refused the model's arguments
	KindUnverified  = "unverified"   // an identity-required action for a user not verified
	KindAwaiting    = "awaiting_confirmation"
	KindBadConfirm  = "invalid_confirmation" // a confirmation forged, expired or of another conversation
)

// Kinds lists every kind, for metrics' labels.
var Kinds = []string{KindOK, KindHTTPError, KindTimeout, KindUnreachable, KindBadAnswer, KindLimited, KindInvalidArgs, KindUnverified, KindAwaiting, KindBadConfirm}

// Outcome is what a call came to.
type Outcome struct {
	Action string
	Kind   string
	Status int
	// Result is the answer cut to the action's response_fields.
	Result any
	// Err is the failure in words the model can pass on; "" when it went
	// through.
	Err  string
	Took time.Duration
}

// Do calls action name with checked args. Failures are outcomes, never
// errors: the model explains them.
func (r *Runner) Do(ctx context.Context, name string, args map[string]any) (out Outcome) {
	s := r.specs[name]
	out = Outcome{Action: name}
	start := time.Now()
	defer func() {
		out.Took = time.Since(start)
		if r.Observe != nil {
			r.Observe(name, out.Kind, out.Took)
		}
	}()
	if s.limiter != nil && !s.limiter.Allow() {
		out.Kind, out.Err = KindLimited, "the service is busy; it was not called, try again in a moment"
		return out
	}
	if r.Stub != nil {
		if status, body, ok := r.Stub(name, args); ok {
			s.answer(&out, status, body)
			return out
		}
	}
	u, body, err := s.URL(args)
	if err != nil {
		out.Kind, out.Err = KindInvalidArgs, err.Error()
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, s.Method, u, rd)
	if err != nil {
		out.Kind, out.Err = KindInvalidArgs, err.Error()
		return out
	}
	for k, v := range s.headers {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.hc.Do(req)
	switch {
	case err != nil && ctx.Err() != nil:
		out.Kind, out.Err = KindTimeout, "the service did not answer in time"
		return out
	case err != nil:
		out.Kind, out.Err = KindUnreachable, "the service could not be reached"
		return out
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBytes+1))
	switch {
	case err != nil && ctx.Err() != nil:
		out.Kind, out.Err = KindTimeout, "the service did not answer in time"
		return out
	case err != nil:
		out.Kind, out.Err = KindUnreachable, "the service's answer broke off"
		return out
	case int64(len(data)) > s.maxBytes:
		out.Kind, out.Err = KindBadAnswer, "the service's answer was too large"
		return out
	}
	s.answer(&out, resp.StatusCode, data)
	return out
}

// answer reads an API's answer into out: a 2xx JSON body cut to the
// fields, or the status in words.
func (s *Spec) answer(out *Outcome, status int, body []byte) {
	out.Status = status
	if status < 200 || status > 299 {
		out.Kind, out.Err = KindHTTPError, fmt.Sprintf("the service answered HTTP %d (%s)", status, http.StatusText(status))
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		out.Kind, out.Result = KindOK, map[string]any{}
		return
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		out.Kind, out.Err = KindBadAnswer, "the service's answer was not JSON"
		return
	}
	out.Kind, out.Result = KindOK, s.redact(pickAll(v, s.fields))
}

// redact takes the action's header values (its secrets) out of a result,
// should the API echo them.
func (s *Spec) redact(v any) any {
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case string:
			for _, secret := range s.secrets {
				x = strings.ReplaceAll(x, secret, "[redacted]")
			}
			return x
		case map[string]any:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		}
		return v
	}
	return walk(v)
}

// tokenOf is a header value's credential after its scheme ("Bearer
// abc" -> "abc"), or "".
func tokenOf(v string) string {
	_, tok, _ := strings.Cut(v, " ")
	return tok
}

// ToolContent is the outcome as the tool message the model reads.
func (o Outcome) ToolContent() string {
	var v any
	switch {
	case o.Kind == KindOK:
		v = map[string]any{"status": o.Status, "result": o.Result}
	default:
		v = map[string]any{"error": o.Err}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Summary is the outcome as history keeps it: one line, the fields as
// "name: value", at most 500 characters.
func (o Outcome) Summary(args map[string]any) string {
	var b strings.Builder
	b.WriteString("(" + o.Action)
	if len(args) > 0 {
		b.WriteString(" for ")
		for i, k := range sortedKeys(args) {
			if i > 0 {
				b.WriteString(", ")
			}
			v, _ := scalar(args[k])
			fmt.Fprintf(&b, "%s %s", k, v)
		}
	}
	b.WriteString(": ")
	if o.Kind != KindOK {
		b.WriteString(o.Err)
	} else {
		var parts []string
		flatten("", o.Result, &parts)
		if len(parts) == 0 {
			parts = []string{"done"}
		}
		b.WriteString(strings.Join(parts, "; "))
	}
	b.WriteString(")")
	return kommbridge.Clip(strings.Join(strings.Fields(b.String()), " "), 500)
}

func flatten(prefix string, v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(x) {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, x[k], out)
		}
	case []any:
		for i, e := range x {
			flatten(fmt.Sprintf("%s[%d]", prefix, i), e, out)
		}
	default:
		*out = append(*out, fmt.Sprintf("%s: %v", prefix, x))
	}
}

// ConfirmText is the confirmation's question for args: the template with
// each {name} replaced by the argument.
func (s *Spec) ConfirmText(args map[string]any) string {
	return templateVar.ReplaceAllStringFunc(s.Confirm, func(m string) string {
		v, _ := scalar(args[m[1:len(m)-1]])
		return v
	})
}
