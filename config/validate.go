package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kommbridge/kommbridge"
)

// MaxReplyBudget is Kommunicate's documented wait for a webhook's answer;
// reply_budget must stay under it.
const MaxReplyBudget = 30 * time.Second

// Validate reports every problem in c at once, each naming its key. A
// policy word that is not one of its type's is refused while decoding,
// at its line (policy.go); what is checked here is the rest.
func (c *Config) Validate() error {
	var p problems
	c.Server.validate(&p)
	c.validateLLM(&p)
	c.Store.validate(&p)
	c.Limits.validate(&p)
	c.Media.validate(&p)
	c.Kommunicate.validate(&p)
	c.validateKnowledge(&p)
	c.validateActions(&p)
	c.validateAgents(&p)
	seen := map[string]bool{}
	for i := range c.Bots {
		b := &c.Bots[i]
		w := b.Where(i)
		if b.ID != "" && seen[b.ID] {
			p.bad(w+".id", "%q is used by more than one bot", b.ID)
		}
		seen[b.ID] = true
		b.validate(w, c, &p)
	}
	return joinProblems(p)
}

// problems collects what Validate finds.
type problems []error

func (p *problems) bad(key, format string, args ...any) {
	*p = append(*p, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (s Server) validate(p *problems) {
	if s.Addr == "" {
		p.bad("server.addr", "must be set, e.g. \":8080\"")
	}
	if !strings.HasPrefix(s.WebhookPath, "/") {
		p.bad("server.webhook_path", "must start with /; got %q", s.WebhookPath)
	}
	if s.ReplyBudget <= 0 {
		p.bad("server.reply_budget", "must be positive; got %s", s.ReplyBudget.D())
	} else if s.ReplyBudget.D() >= MaxReplyBudget {
		p.bad("server.reply_budget", "must be under 30s, Kommunicate stops waiting at 30s; got %s (25s is a good value)", s.ReplyBudget.D())
	}
	if s.MaxBodyBytes <= 0 {
		p.bad("server.max_body_bytes", "must be positive; got %d", s.MaxBodyBytes)
	}
	if s.Auth.Value != "" && s.Auth.Header == "" {
		p.bad("server.auth.header", "must name the header when server.auth.value is set")
	}
	if s.ShutdownGrace < 0 {
		p.bad("server.shutdown_grace", "must not be negative")
	}
}

func (k Kommunicate) validate(p *problems) {
	if u, err := url.Parse(k.APIBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p.bad("kommunicate.api_base", "must be an http(s) URL such as https://services.kommunicate.io; got %q", k.APIBase)
	}
	if k.TakeoverAfter <= 0 {
		p.bad("kommunicate.takeover_after", "must be positive")
	}
}

// validateLLM checks the endpoints, the judge's and the prices.
func (c *Config) validateLLM(p *problems) {
	l := c.LLM
	validEndpoint("llm", l.Endpoint, p)
	for i, f := range l.Fallbacks {
		validEndpoint(fmt.Sprintf("llm.fallbacks[%d]", i), f, p)
	}
	if c.Eval.Judge != nil {
		validEndpoint("eval.judge", *c.Eval.Judge, p)
	}
	for model, pr := range c.Eval.Prices {
		if pr.Input < 0 || pr.Output < 0 {
			p.bad("eval.prices."+model, "prices must not be negative")
		}
	}
	if l.MaxRetries < 0 || l.MaxRetries > 10 {
		p.bad("llm.max_retries", "must be between 0 and 10; got %d", l.MaxRetries)
	}
	if l.MaxResponseBytes < 4096 {
		p.bad("llm.max_response_bytes", "must be at least 4096; got %d", l.MaxResponseBytes)
	}
	if l.MaxConcurrency < 1 {
		p.bad("llm.max_concurrency", "must be at least 1; got %d", l.MaxConcurrency)
	}
	if l.Breaker.Failures < 0 {
		p.bad("llm.breaker.failures", "must not be negative (0 turns the breaker off)")
	}
	if l.Breaker.Failures > 0 && l.Breaker.Cooldown <= 0 {
		p.bad("llm.breaker.cooldown", "must be positive when llm.breaker.failures is set")
	}
}

func (s Store) validate(p *problems) {
	if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "memory" && u.Scheme != "redis" && u.Scheme != "rediss") {
		p.bad("store.url", "must be memory:// or redis://host:6379/0; got %q", s.URL)
	}
	if s.HistoryTurns < 0 {
		p.bad("store.history_turns", "must not be negative; got %d", s.HistoryTurns)
	}
	if s.HistoryTTL <= 0 {
		p.bad("store.history_ttl", "must be positive; got %s", s.HistoryTTL.D())
	}
	if s.DedupeTTL <= 0 {
		p.bad("store.dedupe_ttl", "must be positive; got %s", s.DedupeTTL.D())
	}
	if s.MaxConversations < 1 {
		p.bad("store.max_conversations", "must be at least 1; got %d", s.MaxConversations)
	}
	if s.MaxDedupe < 1 {
		p.bad("store.max_dedupe", "must be at least 1; got %d", s.MaxDedupe)
	}
	if s.Lease < Duration(300*time.Millisecond) {
		p.bad("store.lease", "must be at least 300ms (renewed every lease/3); got %s", s.Lease.D())
	}
}

func (l Limits) validate(p *problems) {
	if l.MaxMessageChars < 100 {
		p.bad("limits.max_message_chars", "must be at least 100; got %d", l.MaxMessageChars)
	}
	if strings.TrimSpace(l.BusyMessage) == "" {
		p.bad("limits.busy_message", "must not be empty: it is what users get during a burst")
	}
	for _, r := range []struct {
		name string
		r    kommbridge.Rate
	}{{"conversation", l.Conversation}, {"user", l.User}, {"global", l.Global}} {
		if r.r.Per < 0 {
			p.bad("limits."+r.name+".rate", "must not be negative (0 turns the limit off)")
		}
		if r.r.Per > 0 && r.r.Burst < 1 {
			p.bad("limits."+r.name+".burst", "must be at least 1 when limits.%s.rate is set", r.name)
		}
	}
}

func (m Media) validate(p *problems) {
	if m.MaxBytes <= 0 {
		p.bad("media.max_bytes", "must be positive; got %d", m.MaxBytes)
	}
	if m.MaxDocumentChars <= 0 {
		p.bad("media.max_document_chars", "must be positive; got %d", m.MaxDocumentChars)
	}
	if m.FetchTimeout <= 0 {
		p.bad("media.fetch_timeout", "must be positive")
	}
	if m.MaxAttachments < 1 {
		p.bad("media.max_attachments", "must be at least 1; got %d", m.MaxAttachments)
	}
	if m.MaxTotalBytes < m.MaxBytes {
		p.bad("media.max_total_bytes", "must be at least media.max_bytes (%d); got %d", m.MaxBytes, m.MaxTotalBytes)
	}
	if m.MaxParallelFetches < 1 {
		p.bad("media.max_parallel_fetches", "must be at least 1; got %d", m.MaxParallelFetches)
	}
	for i, h := range m.AllowedHosts {
		if h == "" || strings.Contains(h, "/") {
			p.bad(fmt.Sprintf("media.allowed_hosts[%d]", i), "must be a host name or IP, optionally with :port; got %q", h)
		}
	}
}

// validate checks bot w; c is the configuration it is part of.
func (b *Bot) validate(w string, c *Config, p *problems) {
	if b.ID == "" {
		p.bad(w+".id", "must be set: the botId Kommunicate sends, or \"*\" for the default bot")
	}
	if b.Temperature != nil && (*b.Temperature < 0 || *b.Temperature > 2) {
		p.bad(w+".temperature", "must be between 0 and 2; got %g", *b.Temperature)
	}
	if b.MaxTokens < 0 {
		p.bad(w+".max_tokens", "must not be negative; got %d", b.MaxTokens)
	}
	if b.SuggestedReplies.Max != nil && *b.SuggestedReplies.Max < 0 {
		p.bad(w+".suggested_replies.max", "must not be negative; got %d", *b.SuggestedReplies.Max)
	}
	if a := b.Async; a.Enabled {
		if c.Kommunicate.APIKey == "" {
			p.bad(w+".async.enabled", "needs kommunicate.api_key (dashboard -> Settings -> Install) to post answers later")
		}
		if a.HoldAfter <= 0 || a.HoldAfter >= c.Server.ReplyBudget {
			p.bad(w+".async.hold_after", "must be positive and under server.reply_budget (%s); got %s", c.Server.ReplyBudget.D(), a.HoldAfter.D())
		}
		if a.MaxWait <= a.HoldAfter {
			p.bad(w+".async.max_wait", "must be longer than async.hold_after; got %s", a.MaxWait.D())
		}
	}
	for j := range b.Rich {
		if b.ReplyFormat == Format(kommbridge.FormatText) {
			p.bad(fmt.Sprintf("%s.rich[%d]", w, j), "needs reply_format json_schema, json_object or tools: the text format has no place for rich answers")
		}
	}
	for name, f := range b.Forms {
		validForm(w+".forms."+name, f, p)
	}
	b.Handoff.validate(w, b, p)
}

func (h Handoff) validate(w string, b *Bot, p *problems) {
	if h.MinConfidence != nil && (*h.MinConfidence < 0 || *h.MinConfidence > 1) {
		p.bad(w+".handoff.min_confidence", "must be between 0 and 1; got %g", *h.MinConfidence)
	}
	if h.MinTokenConfidence < 0 || h.MinTokenConfidence > 1 {
		p.bad(w+".handoff.min_token_confidence", "must be between 0 and 1; got %g", h.MinTokenConfidence)
	}
	for key, name := range map[string]string{"form": h.Form, "offline_form": h.OfflineForm} {
		f, ok := b.Forms[name]
		switch {
		case name != "" && !ok:
			p.bad(w+".handoff."+key, "names no form in %s.forms; got %q", w, name)
		case slices.ContainsFunc(f.Fields, func(fd FormField) bool { return fd.Type == "password" }):
			p.bad(w+".handoff."+key, "form %q has a password field: a handoff form's values are posted as visible text for the people taking over", name)
		}
	}
	if h.Hours != nil && len(h.Hours.Weekly) == 0 {
		p.bad(w+".handoff.hours.weekly", "must list the opening hours, e.g. {mon-fri: \"09:00-17:00\"}")
	}
	if h.Cooldown < 0 {
		p.bad(w+".handoff.cooldown", "must not be negative")
	}
	for team, id := range h.Teams {
		if id == "" {
			p.bad(w+".handoff.teams."+team, "needs a Kommunicate team id")
		}
	}
	for j, ph := range h.Phrases {
		if strings.TrimSpace(ph) == "" {
			p.bad(fmt.Sprintf("%s.handoff.phrases[%d]", w, j), "must not be empty")
		}
	}
}

// headerName is an HTTP header name (RFC 9110 token).
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// formNameRE is what a form name or field name may be: it travels in
// markers and as Kommunicate's formData keys.
var formNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func validForm(key string, f Form, p *problems) {
	bad := p.bad
	if !formNameRE.MatchString(key[strings.LastIndexByte(key, '.')+1:]) {
		bad(key, "a form name may hold letters, digits, _ and - only")
	}
	if len(f.Fields) == 0 {
		bad(key+".fields", "must list at least one field")
	}
	seen := map[string]bool{}
	for j, fd := range f.Fields {
		fk := fmt.Sprintf("%s.fields[%d]", key, j)
		switch {
		case !formNameRE.MatchString(fd.Name):
			bad(fk+".name", "must be set, with letters, digits, _ and - only; got %q", fd.Name)
		case seen[fd.Name]:
			bad(fk+".name", "%q is used by more than one field", fd.Name)
		}
		seen[fd.Name] = true
		if (fd.Type == "radio" || fd.Type == "checkbox" || fd.Type == "dropdown") && len(fd.Options) == 0 {
			bad(fk+".options", "a %s field needs options", fd.Type)
		}
		if fd.Regex != "" {
			if _, err := regexp.Compile(fd.Regex); err != nil {
				bad(fk+".regex", "does not compile: %v", err)
			}
		}
	}
}

func validEndpoint(key string, e Endpoint, p *problems) {
	bad := p.bad
	u, err := url.Parse(e.BaseURL)
	if e.BaseURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad(key+".base_url", "must be an http(s) URL such as https://api.openai.com/v1; got %q", e.BaseURL)
	}
	if e.Model == "" {
		bad(key+".model", "must be set, e.g. gpt-4o-mini")
	}
	for k, v := range e.Headers {
		switch {
		case !headerName.MatchString(k):
			bad(key+".headers."+k, "is not a header name")
		case strings.ContainsAny(v, "\r\n"):
			bad(key+".headers."+k, "must not hold a line break")
		case strings.EqualFold(k, "Authorization") && e.APIKey != "", strings.EqualFold(k, "Api-Key") && e.APIKey != "":
			bad(key+".headers."+k, "is set by %s.api_key; set one of them", key)
		}
	}
	if e.APIType == APIAzure && e.APIVersion == "" {
		bad(key+".api_version", "must be set for api_type azure")
	}
}
