package config

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/kommbridge/kommbridge"
)

// Action is a call to the business's own HTTP API that bots may make: the
// operator declares everything but the arguments, which the model fills
// in and kommbridge checks against Parameters.
type Action struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Method      Method `yaml:"method"`
	// URL is a template: {name} stands for an argument, escaped into its
	// path segment or query value.
	URL string `yaml:"url"`
	// Parameters is the JSON Schema of the arguments (an object).
	Parameters Schema            `yaml:"parameters"`
	Headers    map[string]string `yaml:"headers"`
	// ResponseFields are the dot paths of the answer's JSON that reach the
	// model ("status", "items.name"); nothing else of the answer does.
	ResponseFields []string `yaml:"response_fields"`
	Timeout        Duration `yaml:"timeout"`
	// Confirm, when set, makes the action a write: it runs only when the
	// user presses Yes under this text (a template of the arguments,
	// {order_id}). A method other than GET needs it, unless ReadOnly.
	Confirm string `yaml:"confirm"`
	// ReadOnly declares that a POST (or another method that usually
	// changes data) only reads, such as a search endpoint, so that it runs
	// on the model's call without a confirmation.
	ReadOnly bool `yaml:"read_only"`
	// Identity: required runs the action only for a user the website
	// vouches for (identity.secret).
	Identity ActionIdentity `yaml:"identity"`
	// Limit bounds the calls to this action, across conversations.
	Limit kommbridge.Rate `yaml:"limit"`
	// MaxResponseBytes bounds the answer read.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
	// Example arguments, for check --probe (GET actions only).
	Example map[string]any `yaml:"example"`
	// HeadersFrom says where each header's value came from, never the
	// value.
	HeadersFrom map[string]string `yaml:"-"`
}

// Method is an action's HTTP method.
type Method string

// Action methods.
const (
	MethodGet    Method = "GET"
	MethodPost   Method = "POST"
	MethodPut    Method = "PUT"
	MethodPatch  Method = "PATCH"
	MethodDelete Method = "DELETE"
)

// UnmarshalYAML refuses another word.
func (m *Method) UnmarshalYAML(n *yaml.Node) error {
	return word(n, m, MethodGet, MethodPost, MethodPut, MethodPatch, MethodDelete)
}

// Write reports whether the method changes data on the server.
func (m Method) Write() bool { return m != MethodGet }

// ActionIdentity is who may cause an action (actions[].identity).
type ActionIdentity string

// Identity requirements.
const (
	IdentityRequired ActionIdentity = "required" // a user the website vouches for
	IdentityNone     ActionIdentity = "none"
)

// UnmarshalYAML refuses another word.
func (p *ActionIdentity) UnmarshalYAML(n *yaml.Node) error {
	return word(n, p, IdentityRequired, IdentityNone)
}

// Schema is a JSON Schema written in YAML, kept as JSON.
type Schema struct{ JSON json.RawMessage }

// UnmarshalYAML reads any YAML value and keeps it as JSON.
func (s *Schema) UnmarshalYAML(n *yaml.Node) error {
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d col %d: not a JSON Schema: %v", n.Line, n.Column, err)}}
	}
	s.JSON = data
	return nil
}

// Confirmations are the yes/no buttons under an action that changes data.
type Confirmations struct {
	// Secret signs the buttons' tokens; empty, one is made and kept in
	// the store (shared by replicas).
	Secret string `yaml:"secret"`
	// TTL is how long a confirmation may be pressed.
	TTL Duration `yaml:"ttl"`
	Yes string   `yaml:"yes"`
	No  string   `yaml:"no"`
	// Messages: pressing No; pressing a button that is no longer valid
	// (expired, forged, from another conversation); pressing it again.
	CancelledMessage string `yaml:"cancelled_message"`
	InvalidMessage   string `yaml:"invalid_message"`
	DoneMessage      string `yaml:"done_message"`
}

// Identity is how the website vouches for a signed-in user: its backend
// sets the chat context key ContextKey to the hex HMAC-SHA256 of the
// user's Kommunicate user id, keyed with Secret.
type Identity struct {
	Secret     string `yaml:"secret"`
	ContextKey string `yaml:"context_key"`
	// SignInMessage is what the model tells a user who must sign in.
	SignInMessage string `yaml:"sign_in_message"`
}

// unsetSecrets names the action headers that refer to a variable the
// environment does not set ("Bearer ${ACME_TOKEN}" with no ACME_TOKEN):
// the call would go out without its credential.
func (c *Config) unsetSecrets(getenv func(string) string) []error {
	var out []error
	for i, a := range c.Actions {
		for _, k := range slices.Sorted(maps.Keys(a.Headers)) {
			for _, m := range envRef.FindAllStringSubmatch(a.Headers[k], -1) {
				if getenv(m[1]) == "" {
					out = append(out, fmt.Errorf("actions[%d].headers.%s: ${%s} is not set in the environment", i, k, m[1]))
				}
			}
		}
	}
	return out
}

// Action returns the action named name, or nil.
func (c *Config) Action(name string) *Action {
	for i := range c.Actions {
		if c.Actions[i].Name == name {
			return &c.Actions[i]
		}
	}
	return nil
}

// Action defaults.
const (
	DefaultMaxActionRounds  = 3
	DefaultActionTimeout    = 5 * time.Second
	DefaultActionMaxBytes   = 1 << 20
	DefaultIdentityKey      = "kommbridge_user_sig"
	DefaultCancelledMessage = "Okay, I haven't changed anything."
	DefaultInvalidMessage   = "That confirmation is no longer valid, so nothing was done. Ask me again if you still want it."
	DefaultDoneMessage      = "That was already done."
	DefaultSignInMessage    = "Please sign in to your account first; then I can do this for you."
)

func (c *Config) actionDefaults() {
	for i := range c.Actions {
		a := &c.Actions[i]
		a.Method = cmp.Or(a.Method, MethodGet)
		a.Identity = cmp.Or(a.Identity, IdentityNone)
		if a.Timeout == 0 {
			a.Timeout = Duration(DefaultActionTimeout)
		}
		if a.MaxResponseBytes == 0 {
			a.MaxResponseBytes = DefaultActionMaxBytes
		}
	}
	cf := &c.Confirmations
	if cf.TTL == 0 {
		cf.TTL = Duration(10 * time.Minute)
	}
	cf.Yes, cf.No = cmp.Or(cf.Yes, "Yes"), cmp.Or(cf.No, "No")
	cf.CancelledMessage = cmp.Or(cf.CancelledMessage, DefaultCancelledMessage)
	cf.InvalidMessage = cmp.Or(cf.InvalidMessage, DefaultInvalidMessage)
	cf.DoneMessage = cmp.Or(cf.DoneMessage, DefaultDoneMessage)
	c.Identity.ContextKey = cmp.Or(c.Identity.ContextKey, DefaultIdentityKey)
	if c.Privacy.Mask == nil {
		c.Privacy.Mask = []MaskKind{MaskCards}
	}
	c.Identity.SignInMessage = cmp.Or(c.Identity.SignInMessage, DefaultSignInMessage)
	for i := range c.Bots {
		if b := &c.Bots[i]; b.MaxActionRounds == 0 {
			b.MaxActionRounds = DefaultMaxActionRounds
		}
	}
}

var (
	actionName  = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	templateVar = regexp.MustCompile(`\{([^{}]*)\}`)
)

// TemplateVars are the {name}s of an action's URL or confirm text.
func TemplateVars(s string) []string {
	var out []string
	for _, m := range templateVar.FindAllStringSubmatch(s, -1) {
		out = append(out, m[1])
	}
	return out
}

// authority is the host part of a URL as written: what stands between
// "://" and the path.
func authority(raw string) string {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		rest = raw
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// CompileSchema compiles an action's parameters (draft 2020-12 unless the
// schema names another).
func CompileSchema(name string, raw json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	loc := "mem://actions/" + name + ".json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, err
	}
	return c.Compile(loc)
}

func (c *Config) validateActions(p *problems) {
	names := map[string]bool{}
	for i := range c.Actions {
		a := &c.Actions[i]
		w := fmt.Sprintf("actions[%d]", i)
		switch {
		case !actionName.MatchString(a.Name):
			p.bad(w+".name", "must be letters, digits, _ or -, at most 64; got %q", a.Name)
		case names[a.Name]:
			p.bad(w+".name", "%q is used by more than one action", a.Name)
		}
		names[a.Name] = true
		if strings.TrimSpace(a.Description) == "" {
			p.bad(w+".description", "must say what the action does: the model reads it to choose")
		}
		props := map[string]bool{}
		var schema struct {
			Type       string         `json:"type"`
			Properties map[string]any `json:"properties"`
		}
		switch {
		case len(a.Parameters.JSON) == 0:
			p.bad(w+".parameters", "must be a JSON Schema of the arguments: {type: object, properties: {...}}")
		case json.Unmarshal(a.Parameters.JSON, &schema) != nil || schema.Type != "object":
			p.bad(w+".parameters", "must be a JSON Schema with type: object")
		default:
			for k := range schema.Properties {
				props[k] = true
			}
			if _, err := CompileSchema(a.Name, a.Parameters.JSON); err != nil {
				p.bad(w+".parameters", "is not a valid JSON Schema: %v", err)
			}
		}
		u, err := url.Parse(templateVar.ReplaceAllString(a.URL, "x"))
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
			p.bad(w+".url", "must be an http(s) URL; got %q", a.URL)
		case strings.Contains(authority(a.URL), "{"):
			p.bad(w+".url", "must not hold an argument in its host: the host is the operator's, not the model's")
		case u.Scheme == "http" && !slices.Contains(c.Media.AllowedHosts, u.Hostname()) && !slices.Contains(c.Media.AllowedHosts, u.Host):
			p.bad(w+".url", "is http: list its host in media.allowed_hosts (an internal API), or use https")
		}
		for _, v := range append(TemplateVars(a.URL), TemplateVars(a.Confirm)...) {
			if !props[v] {
				p.bad(w, "{%s} is not one of parameters' properties", v)
			}
		}
		if len(a.ResponseFields) == 0 {
			p.bad(w+".response_fields", "must list the fields of the answer the model may see (dot paths, such as status or items.name)")
		}
		if a.Timeout.D() <= 0 || a.Timeout.D() > 20*time.Second {
			p.bad(w+".timeout", "must be from 1ms to 20s; got %s", a.Timeout.D())
		}
		for k, v := range a.Headers {
			if v == "" {
				from := a.HeadersFrom[k]
				p.bad(w+".headers."+k, "is empty: %s is not set", cmp.Or(from, "its value"))
			}
		}
		if a.Method.Write() && a.Confirm == "" && !a.ReadOnly {
			p.bad(w+".confirm", "is needed: a %s changes data, and nothing that changes data runs on the model's word; set confirm (the user's Yes runs it), or read_only: true if this %s only reads", a.Method, a.Method)
		}
		if a.Identity == IdentityRequired && c.Identity.Secret == "" {
			p.bad(w+".identity", "is required, but identity.secret is not set: no user could be verified")
		}
		if a.Limit.Per < 0 || a.Limit.Burst < 0 {
			p.bad(w+".limit", "must be positive")
		}
	}
	for i := range c.Bots {
		b := &c.Bots[i]
		for _, name := range b.Actions {
			if !names[name] {
				p.bad(b.Where(i)+".actions", "names no action: %q (actions[].name)", name)
			}
		}
		if len(b.Actions) > 0 && b.ReplyFormat == Format(kommbridge.FormatText) {
			p.bad(b.Where(i)+".actions", "need the json_schema, json_object or tools reply format: the text format has no tool calls")
		}
		if b.MaxActionRounds < 1 || b.MaxActionRounds > 10 {
			p.bad(b.Where(i)+".max_action_rounds", "must be from 1 to 10; got %d", b.MaxActionRounds)
		}
	}
	switch ttl := c.Confirmations.TTL.D(); {
	case ttl <= 0:
		p.bad("confirmations.ttl", "must be positive")
	case len(c.Actions) > 0 && ttl > c.Store.DedupeTTL.D():
		p.bad("confirmations.ttl", "must be at most store.dedupe_ttl (%s): a confirmation is remembered as used only that long", c.Store.DedupeTTL.D())
	}
}
