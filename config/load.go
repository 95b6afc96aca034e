package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kommbridge/kommbridge"
)

// Default returns the configuration used for every key config.yaml leaves
// out. It has no bots; Load adds a default "*" bot when the file has none.
func Default() Config {
	return Config{
		Server: Server{
			Addr:         ":8080",
			WebhookPath:  "/webhook",
			Auth:         Auth{Header: "X-Kommbridge-Token"},
			ReplyBudget:  Duration(25 * time.Second),
			MaxBodyBytes: 1 << 20,
		},
		LLM: LLM{
			Endpoint: Endpoint{
				BaseURL: "https://api.openai.com/v1",
				APIType: "openai",
				Model:   "gpt-4o-mini",
			},
			MaxRetries:       2,
			MaxConcurrency:   256,
			Breaker:          Breaker{Failures: 5, Cooldown: Duration(30 * time.Second)},
			MaxResponseBytes: 4 << 20,
		},
		Store: Store{
			URL:              "memory://",
			HistoryTurns:     20,
			HistoryTTL:       Duration(24 * time.Hour),
			DedupeTTL:        Duration(10 * time.Minute),
			MaxConversations: 100_000,
			MaxDedupe:        100_000,
			OnOutage:         "degrade",
			Lease:            Duration(5 * time.Second),
		},
		Limits: Limits{
			Message:         "You're sending messages faster than I can read them. Give me a moment.",
			BusyMessage:     "I'm answering a lot of people right now. Please send that again in a moment.",
			MaxMessageChars: 8000,
		},
		Log: Log{Level: "info", Format: "json"},
		Media: Media{
			MaxBytes:           10 << 20,
			MaxDocumentChars:   20000,
			TranscriptionModel: "whisper-1",
			FetchTimeout:       Duration(10 * time.Second),
			MaxAttachments:     10,
			MaxTotalBytes:      25 << 20,
			MaxParallelFetches: 4,
		},
		Kommunicate: Kommunicate{
			APIBase:       "https://services.kommunicate.io",
			TakeoverAfter: Duration(15 * time.Second),
		},
	}
}

// Bot defaults, applied to every bot for the keys it leaves out.
const (
	DefaultReplyFormat          = kommbridge.FormatJSONSchema
	DefaultHandoffMessage       = "Let me connect you with a teammate."
	DefaultErrorMessage         = "Sorry, I'm having trouble answering right now."
	DefaultContentFilterMessage = "I can't help with that request. Could you put it another way?"
	DefaultTooLongMessage       = "That's more than I can read at once. Could you send a shorter message or a smaller file?"
	DefaultOfflineMessage       = "Our team is away right now. A teammate will pick this up {{.Opens}}."
	DefaultMaxTokens            = 600
	DefaultSuggestedMax         = 3
	DefaultMinConfidence        = 0.5
)

// Load reads the file at path, expands ${VAR} with getenv, applies the
// environment overrides, fills defaults, compiles templates and validates.
// The error lists every problem found.
//
// checks add problems of their own to the list (bridge's template check),
// so that every problem is reported at once.
func Load(path string, getenv func(string) string, checks ...func(*Config) []error) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path, getenv, checks...)
}

// Parse is Load for a configuration already in memory; path names it in
// errors and anchors relative system_prompt_file paths.
func Parse(data []byte, path string, getenv func(string) string, checks ...func(*Config) []error) (*Config, error) {
	cfg := Default()
	cfg.Path = path
	// Filled after decoding, so that what the file itself says is known.
	cfg.LLM.BaseURL = ""
	data = expandScalars(data, getenv)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var problems []error
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, yamlSyntax(path, data, err)
		}
		// Type errors leave the rest decoded: report them with the rest.
		problems = append(problems, decodeError(path, data, te)...)
	}
	cfg.secretOrigins()
	problems = append(problems, cfg.unsetSecrets(getenv)...)
	expandEnv(reflect.ValueOf(&cfg).Elem(), getenv)
	cfg.environment(getenv)
	cfg.applyDefaults()
	problems = append(problems, cfg.readPromptFiles()...)
	for _, check := range checks {
		problems = append(problems, check(&cfg)...)
	}
	if err := cfg.Validate(); err != nil {
		problems = append(problems, err.(Problems)...)
	}
	if len(problems) > 0 {
		return nil, Problems(problems)
	}
	return &cfg, nil
}

// secretOrigins records, before ${VAR} expansion, where each secret
// comes from.
func (c *Config) secretOrigins() {
	origin := func(raw, path string) string {
		switch m := envRef.FindStringSubmatch(raw); {
		case raw == "":
			return ""
		case m != nil && m[0] == strings.TrimSpace(raw):
			return "${" + m[1] + "}"
		}
		return path
	}
	endpoint := func(e *Endpoint, path string) {
		e.KeyFrom = origin(e.APIKey, path+".api_key")
		if len(e.Headers) > 0 {
			e.HeadersFrom = make(map[string]string, len(e.Headers))
			for k, v := range e.Headers {
				e.HeadersFrom[k] = origin(v, path+".headers."+k)
			}
		}
	}
	endpoint(&c.LLM.Endpoint, "llm")
	for i := range c.LLM.Fallbacks {
		endpoint(&c.LLM.Fallbacks[i], fmt.Sprintf("llm.fallbacks[%d]", i))
	}
	c.Server.Auth.ValueFrom = origin(c.Server.Auth.Value, "server.auth.value")
	if j := c.Eval.Judge; j != nil {
		endpoint(j, "eval.judge")
	}
	for i := range c.Actions {
		a := &c.Actions[i]
		a.HeadersFrom = map[string]string{}
		for k, v := range a.Headers {
			a.HeadersFrom[k] = origin(v, fmt.Sprintf("actions[%d].headers.%s", i, k))
		}
	}
	for i, k := range c.Knowledge {
		if e := k.Embeddings; e != nil {
			ep := e.Endpoint()
			endpoint(&ep, fmt.Sprintf("knowledge[%d].embeddings", i))
			e.KeyFrom, e.HeadersFrom = ep.KeyFrom, ep.HeadersFrom
		}
	}
}

// environment applies the variables that stand in for keys the file leaves
// out. OPENAI_BASE_URL is the primary's base URL when the file names none
// (else OpenAI's); OPENAI_API_KEY is its key only when the file names
// neither a key nor a base URL, as the OpenAI SDKs read the pair: a key
// written for a URL never goes to another. A fallback's key comes from its
// own entry alone.
func (c *Config) environment(getenv func(string) string) {
	fileURL := c.LLM.BaseURL != ""
	if !fileURL {
		c.LLM.BaseURL = Default().LLM.BaseURL
		if v := getenv("OPENAI_BASE_URL"); v != "" {
			c.LLM.BaseURL = v
		}
	}
	if c.LLM.KeyFrom == "" && !fileURL {
		if v := getenv("OPENAI_API_KEY"); v != "" {
			c.LLM.APIKey, c.LLM.KeyFrom = v, "OPENAI_API_KEY"
		}
	}
	if c.Server.Auth.ValueFrom == "" {
		if v := getenv("KOMMBRIDGE_WEBHOOK_TOKEN"); v != "" {
			c.Server.Auth.Value, c.Server.Auth.ValueFrom = v, "KOMMBRIDGE_WEBHOOK_TOKEN"
		}
	}
	if v := getenv("KOMMBRIDGE_ADDR"); v != "" {
		c.Server.Addr = v
	}
	if v := getenv("KOMMBRIDGE_STORE_URL"); v != "" {
		c.Store.URL = v
	}
}

// Warnings name what is legal but likely a mistake: an endpoint without a
// key (servers such as Ollama need none, OpenAI and most services do).
func (c *Config) Warnings() []string {
	var out []string
	empty := func(e Endpoint, path string) {
		if e.APIKey != "" {
			return
		}
		why := path + " is not set"
		if e.KeyFrom != "" {
			why = path + " is empty: " + e.KeyFrom + " is not set in the environment"
		}
		out = append(out, fmt.Sprintf("%s, so %s gets no API key (fine for servers that need none, such as Ollama)", why, e.BaseURL))
	}
	empty(c.LLM.Endpoint, "llm.api_key")
	for i, f := range c.LLM.Fallbacks {
		empty(f, fmt.Sprintf("llm.fallbacks[%d].api_key", i))
	}
	for i, k := range c.Knowledge {
		if e := k.Embeddings; e != nil {
			empty(e.Endpoint(), fmt.Sprintf("knowledge[%d].embeddings.api_key", i))
		}
	}
	return out
}

// AuthProblem says why serving the webhook would be unsafe: an empty token
// without server.auth.disabled, or a token together with it. "" means
// the webhook is protected, or deliberately open.
func (c *Config) AuthProblem() string {
	a := c.Server.Auth
	switch {
	case a.Disabled && a.Value != "":
		return "server.auth.disabled is true but server.auth.value is set: remove one of them"
	case a.Disabled || a.Value != "":
		return ""
	case a.ValueFrom != "" && a.ValueFrom != "server.auth.value":
		return fmt.Sprintf("server.auth.value is empty: %s is not set in the environment. Set it to the token Kommunicate sends in %s, or set server.auth.disabled: true to serve the webhook without authentication", a.ValueFrom, a.Header)
	}
	return fmt.Sprintf("server.auth.value is not set: set it (or KOMMBRIDGE_WEBHOOK_TOKEN) to the token Kommunicate sends in %s, or set server.auth.disabled: true to serve the webhook without authentication", a.Header)
}

func (c *Config) applyDefaults() {
	if len(c.Bots) == 0 {
		c.Bots = []Bot{{ID: "*"}}
	}
	if c.LLM.APIType == APIAzure && c.LLM.APIVersion == "" {
		c.LLM.APIVersion = "2024-10-21"
	}
	if j := c.Eval.Judge; j != nil {
		if j.APIType == "" {
			j.APIType = "openai"
		}
		if j.APIType == APIAzure && j.APIVersion == "" {
			j.APIVersion = "2024-10-21"
		}
	}
	for i := range c.LLM.Fallbacks {
		f := &c.LLM.Fallbacks[i]
		if f.APIType == "" {
			f.APIType = "openai"
		}
		if f.APIType == APIAzure && f.APIVersion == "" {
			f.APIVersion = "2024-10-21"
		}
		if f.Model == "" {
			f.Model = c.LLM.Model
		}
	}
	if c.Server.ShutdownGrace == 0 {
		c.Server.ShutdownGrace = c.Server.ReplyBudget
	}
	c.knowledgeDefaults()
	c.actionDefaults()
	c.agentDefaults()
	for i := range c.Bots {
		b := &c.Bots[i]
		b.ReplyFormat = cmp.Or(b.ReplyFormat, Format(DefaultReplyFormat))
		if b.MaxTokens == 0 {
			b.MaxTokens = DefaultMaxTokens
		}
		if b.SuggestedReplies.Max == nil {
			n := DefaultSuggestedMax
			b.SuggestedReplies.Max = &n
		}
		if b.Async.HoldAfter == 0 {
			b.Async.HoldAfter = Duration(20 * time.Second)
		}
		if b.Async.MaxWait == 0 {
			b.Async.MaxWait = Duration(120 * time.Second)
		}
		h := &b.Handoff
		if h.MinConfidence == nil {
			v := DefaultMinConfidence
			h.MinConfidence = &v
		}
		for _, d := range []struct {
			v   *string
			def string
		}{
			{&b.Async.HoldMessage, "Give me a moment, I'm looking into this."},
			{&h.Message, DefaultHandoffMessage},
			{&h.ErrorMessage, DefaultErrorMessage},
			{&b.ContentFilterMessage, DefaultContentFilterMessage},
			{&b.TooLongMessage, DefaultTooLongMessage},
			{&h.OfflineMessage, DefaultOfflineMessage},
		} {
			if *d.v == "" {
				*d.v = d.def
			}
		}
		h.OnError = cmp.Or(h.OnError, OnErrorHandoff)
		h.After = cmp.Or(h.After, AfterAnswer)
		h.OnRefusal = cmp.Or(h.OnRefusal, OnRefusalAnswer)
		h.OnContentFilter = cmp.Or(h.OnContentFilter, OnFilterMessage)
		b.Resolve = cmp.Or(b.Resolve, ResolveNever)
		b.Channel = cmp.Or(b.Channel, ChannelAuto)
		if h.Cooldown == 0 {
			h.Cooldown = Duration(10 * time.Minute)
		}
		for name, f := range b.Forms {
			if f.Submit == "" {
				f.Submit = "Submit"
			}
			for j := range f.Fields {
				if f.Fields[j].Type == "" {
					f.Fields[j].Type = "text"
				}
				if f.Fields[j].Label == "" {
					f.Fields[j].Label = f.Fields[j].Name
				}
			}
			b.Forms[name] = f
		}
		if h.Hours != nil && h.Hours.TimeZone == "" {
			h.Hours.TimeZone = "UTC"
		}
	}
}

// readPromptFiles reads each bot's system_prompt_file into system_prompt.
func (c *Config) readPromptFiles() []error {
	var errs []error
	for i := range c.Bots {
		b := &c.Bots[i]
		where := b.Where(i)
		if b.SystemPromptFile != "" {
			if b.SystemPrompt != "" {
				errs = append(errs, fmt.Errorf("%s: set system_prompt or system_prompt_file, not both", where))
				continue
			}
			p := b.SystemPromptFile
			if !filepath.IsAbs(p) && c.Path != "" {
				p = filepath.Join(filepath.Dir(c.Path), p)
			}
			text, err := os.ReadFile(p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.system_prompt_file: %w", where, err))
				continue
			}
			b.SystemPrompt = string(text)
		}
	}
	return errs
}

// Where names bot i in problems: `bots[0] (id "support")`.
func (b *Bot) Where(i int) string { return fmt.Sprintf("bots[%d] (id %q)", i, b.ID) }

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandEnv replaces ${VAR} in every string of v, after decoding, so that a
// value holding YAML syntax cannot change the file's structure.
func expandEnv(v reflect.Value, getenv func(string) string) {
	switch v.Kind() {
	case reflect.String:
		if v.CanSet() && strings.Contains(v.String(), "${") {
			v.SetString(envRef.ReplaceAllStringFunc(v.String(), func(m string) string {
				return getenv(m[2 : len(m)-1])
			}))
		}
	case reflect.Pointer:
		if !v.IsNil() && v.Elem().Kind() == reflect.Struct {
			expandEnv(v.Elem(), getenv)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if f := v.Type().Field(i); f.IsExported() && f.Tag.Get("yaml") != "-" {
				expandEnv(v.Field(i), getenv)
			}
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			expandEnv(v.Index(i), getenv)
		}
	case reflect.Map:
		if v.Type().Elem().Kind() == reflect.String {
			for _, k := range v.MapKeys() {
				s := v.MapIndex(k).String()
				if strings.Contains(s, "${") {
					v.SetMapIndex(k, reflect.ValueOf(envRef.ReplaceAllStringFunc(s, func(m string) string {
						return getenv(m[2 : len(m)-1])
					})))
				}
			}
		}
	}
}

// scalarRef is a key of a number, boolean or duration written as
// "${VAR}", in block or flow style.
var scalarRef = regexp.MustCompile(`([A-Za-z_]+)(\s*:\s*)"?\$\{([A-Za-z_][A-Za-z0-9_]*)\}"?`)

// plainScalar is what such a variable may hold to be written in place: a
// number, a duration or a word, nothing that could change the YAML's
// structure.
var plainScalar = regexp.MustCompile(`^[A-Za-z0-9._+-]+$`)

// expandScalars writes ${VAR} in place where it stands for a number, a
// boolean or a duration (keys of such fields only), which YAML must read
// as such; every string is expanded after decoding instead (expandEnv),
// so that a value cannot change the file's structure. Lines stay where
// they are, for error messages.
func expandScalars(data []byte, getenv func(string) string) []byte {
	if !bytes.Contains(data, []byte("${")) {
		return data
	}
	keys := scalarKeys(reflect.TypeFor[Config](), map[string]bool{})
	return scalarRef.ReplaceAllFunc(data, func(m []byte) []byte {
		g := scalarRef.FindSubmatch(m)
		v := getenv(string(g[3]))
		if !keys[string(g[1])] || !plainScalar.MatchString(v) {
			return m
		}
		return append(append(append([]byte{}, g[1]...), g[2]...), v...)
	})
}

// scalarKeys collects the YAML keys of t's fields (and its nested
// structs') that are not strings.
func scalarKeys(t reflect.Type, keys map[string]bool) map[string]bool {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return keys
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch ft.Kind() {
		case reflect.Struct, reflect.Slice, reflect.Map:
			scalarKeys(ft, keys)
		case reflect.String:
		default:
			if name != "" && name != "-" {
				keys[name] = true
			}
		}
	}
	return keys
}

var lineN = regexp.MustCompile(`^line (\d+): (.*)$`)

var unknownField = regexp.MustCompile(`line (\d+): field (\S+) not found in type config\.(\w+)`)

// sections names the YAML section each config type is decoded from.
var sections = map[string]string{
	"Config": "the top level", "Server": "server", "Auth": "server.auth",
	"LLM": "llm", "Endpoint": "llm or llm.fallbacks[]", "Breaker": "llm.breaker",
	"Store": "store", "Limits": "limits", "Rate": "limits", "Log": "log",
	"Kommunicate": "kommunicate", "Bot": "bots[]", "Welcome": "bots[].welcome",
	"SuggestedReplies": "bots[].suggested_replies", "Handoff": "bots[].handoff", "Media": "media", "Async": "bots[].async",
}

// decodeError turns yaml's type errors into one problem each, naming the
// file, the line and the key.
func decodeError(path string, data []byte, te *yaml.TypeError) []error {
	var errs []error
	lines := strings.Split(string(data), "\n")
	for _, e := range te.Errors {
		if m := unknownField.FindStringSubmatch(e); m != nil {
			errs = append(errs, fmt.Errorf("%s:%s: unknown key %q in %s%s", path, m[1], m[2], sections[m[3]], unknownKeyHint(m[2])))
			continue
		}
		e = strings.TrimPrefix(e, "yaml: ")
		if m := lineCol.FindStringSubmatch(e); m != nil {
			// A value refused by its type's decoder: name its key.
			n, _ := strconv.Atoi(m[1])
			col, _ := strconv.Atoi(m[2])
			e = m[1] + ": " + keyAt(lines, n, col) + m[3]
		} else if m := lineN.FindStringSubmatch(e); m != nil {
			e = m[1] + ": " + m[2]
		}
		errs = append(errs, fmt.Errorf("%s:%s", path, e))
	}
	return errs
}

// lineCol is the start of an error a decoder of this package wrote:
// "line N col C: ...".
var lineCol = regexp.MustCompile(`^line (\d+) col (\d+): (.*)$`)

// keyBefore finds the last key written before a value.
var keyBefore = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*:\s*(?:\[[^\]:]*)?["']?$`)

// keyAt is "key: " for the key of the value at line n, column col (both
// from 1), "" when none is found there.
func keyAt(lines []string, n, col int) string {
	if n < 1 || n > len(lines) {
		return ""
	}
	l := lines[n-1]
	if col-1 < len(l) {
		l = l[:max(col-1, 0)]
	}
	if m := keyBefore.FindStringSubmatch(l); m != nil {
		return m[1] + ": "
	}
	return ""
}

// UnmarshalYAML reads a duration such as "25s" or "1m30s".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration (write it like 25s or 1m30s)", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}

// Problems is every problem Validate or Load found, one per line.
type Problems []error

func (p Problems) Error() string {
	var b strings.Builder
	for i, e := range p {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

func joinProblems(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return Problems(errs)
}
