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

// Validate reports every problem in c at once, each naming its key.
func (c *Config) Validate() error {
	var p []error
	bad := func(key, format string, args ...any) {
		p = append(p, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	s := c.Server
	if s.Addr == "" {
		bad("server.addr", "must be set, e.g. \":8080\"")
	}
	if !strings.HasPrefix(s.WebhookPath, "/") {
		bad("server.webhook_path", "must start with /; got %q", s.WebhookPath)
	}
	if s.ReplyBudget <= 0 {
		bad("server.reply_budget", "must be positive; got %s", s.ReplyBudget.D())
	} else if s.ReplyBudget.D() >= MaxReplyBudget {
		bad("server.reply_budget", "must be under 30s, Kommunicate stops waiting at 30s; got %s (25s is a good value)", s.ReplyBudget.D())
	}
	if s.MaxBodyBytes <= 0 {
		bad("server.max_body_bytes", "must be positive; got %d", s.MaxBodyBytes)
	}
	if s.Auth.Value != "" && s.Auth.Header == "" {
		bad("server.auth.header", "must name the header when server.auth.value is set")
	}
	if s.ShutdownGrace < 0 {
		bad("server.shutdown_grace", "must not be negative")
	}

	if u, err := url.Parse(c.Kommunicate.APIBase); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("kommunicate.api_base", "must be an http(s) URL such as https://services.kommunicate.io; got %q", c.Kommunicate.APIBase)
	}
	if c.Kommunicate.TakeoverAfter <= 0 {
		bad("kommunicate.takeover_after", "must be positive")
	}
	validEndpoint("llm", c.LLM.Endpoint, bad)
	for i, f := range c.LLM.Fallbacks {
		validEndpoint(fmt.Sprintf("llm.fallbacks[%d]", i), f, bad)
	}
	if c.Eval.Judge != nil {
		validEndpoint("eval.judge", *c.Eval.Judge, bad)
	}
	for model, p := range c.Eval.Prices {
		if p.Input < 0 || p.Output < 0 {
			bad("eval.prices."+model, "prices must not be negative")
		}
	}
	if c.LLM.MaxRetries < 0 || c.LLM.MaxRetries > 10 {
		bad("llm.max_retries", "must be between 0 and 10; got %d", c.LLM.MaxRetries)
	}
	if c.LLM.MaxResponseBytes < 4096 {
		bad("llm.max_response_bytes", "must be at least 4096; got %d", c.LLM.MaxResponseBytes)
	}
	if c.LLM.MaxConcurrency < 1 {
		bad("llm.max_concurrency", "must be at least 1; got %d", c.LLM.MaxConcurrency)
	}
	if c.LLM.Breaker.Failures < 0 {
		bad("llm.breaker.failures", "must not be negative (0 turns the breaker off)")
	}
	if c.LLM.Breaker.Failures > 0 && c.LLM.Breaker.Cooldown <= 0 {
		bad("llm.breaker.cooldown", "must be positive when llm.breaker.failures is set")
	}

	if u, err := url.Parse(c.Store.URL); err != nil || (u.Scheme != "memory" && u.Scheme != "redis" && u.Scheme != "rediss") {
		bad("store.url", "must be memory:// or redis://host:6379/0; got %q", c.Store.URL)
	}
	if c.Store.HistoryTurns < 0 {
		bad("store.history_turns", "must not be negative; got %d", c.Store.HistoryTurns)
	}
	if c.Store.HistoryTTL <= 0 {
		bad("store.history_ttl", "must be positive; got %s", c.Store.HistoryTTL.D())
	}
	if c.Store.DedupeTTL <= 0 {
		bad("store.dedupe_ttl", "must be positive; got %s", c.Store.DedupeTTL.D())
	}
	if c.Store.MaxConversations < 1 {
		bad("store.max_conversations", "must be at least 1; got %d", c.Store.MaxConversations)
	}
	if c.Store.MaxDedupe < 1 {
		bad("store.max_dedupe", "must be at least 1; got %d", c.Store.MaxDedupe)
	}
	if c.Store.OnOutage != "degrade" && c.Store.OnOutage != "error" {
		bad("store.on_outage", "must be degrade or error; got %q", c.Store.OnOutage)
	}
	if c.Store.Lease < Duration(300*time.Millisecond) {
		bad("store.lease", "must be at least 300ms (renewed every lease/3); got %s", c.Store.Lease.D())
	}
	if c.Limits.MaxMessageChars < 100 {
		bad("limits.max_message_chars", "must be at least 100; got %d", c.Limits.MaxMessageChars)
	}
	if strings.TrimSpace(c.Limits.BusyMessage) == "" {
		bad("limits.busy_message", "must not be empty: it is what users get during a burst")
	}

	for _, l := range []struct {
		name string
		r    kommbridge.Rate
	}{{"conversation", c.Limits.Conversation}, {"user", c.Limits.User}, {"global", c.Limits.Global}} {
		name, r := l.name, l.r
		if r.Per < 0 {
			bad("limits."+name+".rate", "must not be negative (0 turns the limit off)")
		}
		if r.Per > 0 && r.Burst < 1 {
			bad("limits."+name+".burst", "must be at least 1 when limits.%s.rate is set", name)
		}
	}

	if c.Media.MaxBytes <= 0 {
		bad("media.max_bytes", "must be positive; got %d", c.Media.MaxBytes)
	}
	if c.Media.MaxDocumentChars <= 0 {
		bad("media.max_document_chars", "must be positive; got %d", c.Media.MaxDocumentChars)
	}
	if c.Media.FetchTimeout <= 0 {
		bad("media.fetch_timeout", "must be positive")
	}
	if c.Media.MaxAttachments < 1 {
		bad("media.max_attachments", "must be at least 1; got %d", c.Media.MaxAttachments)
	}
	if c.Media.MaxTotalBytes < c.Media.MaxBytes {
		bad("media.max_total_bytes", "must be at least media.max_bytes (%d); got %d", c.Media.MaxBytes, c.Media.MaxTotalBytes)
	}
	if c.Media.MaxParallelFetches < 1 {
		bad("media.max_parallel_fetches", "must be at least 1; got %d", c.Media.MaxParallelFetches)
	}
	for i, h := range c.Media.AllowedHosts {
		if h == "" || strings.Contains(h, "/") {
			bad(fmt.Sprintf("media.allowed_hosts[%d]", i), "must be a host name or IP, optionally with :port; got %q", h)
		}
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error; got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		bad("log.format", "must be json or console; got %q", c.Log.Format)
	}

	seen := map[string]bool{}
	for i := range c.Bots {
		b := &c.Bots[i]
		w := b.Where(i)
		if b.ID == "" {
			bad(w+".id", "must be set: the botId Kommunicate sends, or \"*\" for the default bot")
		} else if seen[b.ID] {
			bad(w+".id", "%q is used by more than one bot", b.ID)
		}
		seen[b.ID] = true
		if !slices.Contains(kommbridge.ReplyFormats, b.ReplyFormat) {
			bad(w+".reply_format", "must be json_schema, json_object, tools or text; got %q", b.ReplyFormat)
		}
		if b.Temperature != nil && (*b.Temperature < 0 || *b.Temperature > 2) {
			bad(w+".temperature", "must be between 0 and 2; got %g", *b.Temperature)
		}
		switch b.ImageDetail {
		case "", "auto", "low", "high":
		default:
			bad(w+".image_detail", "must be auto, low or high; got %q", b.ImageDetail)
		}
		if b.MaxTokens < 0 {
			bad(w+".max_tokens", "must not be negative; got %d", b.MaxTokens)
		}
		if b.SuggestedReplies.Max != nil && *b.SuggestedReplies.Max < 0 {
			bad(w+".suggested_replies.max", "must not be negative; got %d", *b.SuggestedReplies.Max)
		}
		if a := b.Async; a.Enabled {
			if c.Kommunicate.APIKey == "" {
				bad(w+".async.enabled", "needs kommunicate.api_key (dashboard -> Settings -> Install) to post answers later")
			}
			if a.HoldAfter <= 0 || a.HoldAfter >= c.Server.ReplyBudget {
				bad(w+".async.hold_after", "must be positive and under server.reply_budget (%s); got %s", c.Server.ReplyBudget.D(), a.HoldAfter.D())
			}
			if a.MaxWait <= a.HoldAfter {
				bad(w+".async.max_wait", "must be longer than async.hold_after; got %s", a.MaxWait.D())
			}
		}
		h := b.Handoff
		if h.MinConfidence != nil && (*h.MinConfidence < 0 || *h.MinConfidence > 1) {
			bad(w+".handoff.min_confidence", "must be between 0 and 1; got %g", *h.MinConfidence)
		}
		if h.MinTokenConfidence < 0 || h.MinTokenConfidence > 1 {
			bad(w+".handoff.min_token_confidence", "must be between 0 and 1; got %g", h.MinTokenConfidence)
		}
		if b.Resolve != "auto" && b.Resolve != "never" {
			bad(w+".resolve", "must be auto or never; got %q", b.Resolve)
		}
		switch b.Channel {
		case "auto", kommbridge.ChannelWeb, kommbridge.ChannelWhatsApp, kommbridge.ChannelMessenger, kommbridge.ChannelInstagram:
		default:
			bad(w+".channel", "must be auto, web, whatsapp, messenger or instagram; got %q", b.Channel)
		}
		for j, kind := range b.Rich {
			switch {
			case kind != "cards" && kind != "lists" && kind != "images":
				bad(fmt.Sprintf("%s.rich[%d]", w, j), "must be cards, lists or images; got %q", kind)
			case b.ReplyFormat == kommbridge.FormatText:
				bad(fmt.Sprintf("%s.rich[%d]", w, j), "needs reply_format json_schema, json_object or tools: the text format has no place for rich answers")
			}
		}
		for name, f := range b.Forms {
			validForm(w+".forms."+name, f, bad)
		}
		for key, name := range map[string]string{"form": h.Form, "offline_form": h.OfflineForm} {
			f, ok := b.Forms[name]
			switch {
			case name != "" && !ok:
				bad(w+".handoff."+key, "names no form in %s.forms; got %q", w, name)
			case slices.ContainsFunc(f.Fields, func(fd FormField) bool { return fd.Type == "password" }):
				bad(w+".handoff."+key, "form %q has a password field: a handoff form's values are posted as visible text for the people taking over", name)
			}
		}
		if h.Hours != nil && len(h.Hours.Weekly) == 0 {
			bad(w+".handoff.hours.weekly", "must list the opening hours, e.g. {mon-fri: \"09:00-17:00\"}")
		}
		if h.OnRefusal != "answer" && h.OnRefusal != "handoff" {
			bad(w+".handoff.on_refusal", "must be answer or handoff; got %q", h.OnRefusal)
		}
		if h.OnContentFilter != "message" && h.OnContentFilter != "handoff" {
			bad(w+".handoff.on_content_filter", "must be message or handoff; got %q", h.OnContentFilter)
		}
		if h.OnError != "handoff" && h.OnError != "message" {
			bad(w+".handoff.on_error", "must be handoff or message; got %q", h.OnError)
		}
		if h.After != "answer" && h.After != "silent" {
			bad(w+".handoff.after", "must be answer or silent; got %q", h.After)
		}
		if h.Cooldown < 0 {
			bad(w+".handoff.cooldown", "must not be negative")
		}
		for team, id := range h.Teams {
			if id == "" {
				bad(w+".handoff.teams."+team, "needs a Kommunicate team id")
			}
		}
		for j, ph := range h.Phrases {
			if strings.TrimSpace(ph) == "" {
				bad(fmt.Sprintf("%s.handoff.phrases[%d]", w, j), "must not be empty")
			}
		}
	}
	return joinProblems(p)
}

// headerName is an HTTP header name (RFC 9110 token).
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// formNameRE is what a form name or field name may be: it travels in
// markers and as Kommunicate's formData keys.
var formNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func validForm(key string, f Form, bad func(key, format string, args ...any)) {
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
		switch fd.Type {
		case "text", "textarea", "password", "hidden":
		case "radio", "checkbox", "dropdown":
			if len(fd.Options) == 0 {
				bad(fk+".options", "a %s field needs options", fd.Type)
			}
		default:
			bad(fk+".type", "must be text, textarea, password, hidden, radio, checkbox or dropdown; got %q", fd.Type)
		}
		if fd.Regex != "" {
			if _, err := regexp.Compile(fd.Regex); err != nil {
				bad(fk+".regex", "does not compile: %v", err)
			}
		}
	}
}

func validEndpoint(key string, e Endpoint, bad func(key, format string, args ...any)) {
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
	switch e.APIType {
	case "openai":
	case "azure":
		if e.APIVersion == "" {
			bad(key+".api_version", "must be set for api_type azure")
		}
	default:
		bad(key+".api_type", "must be openai or azure; got %q", e.APIType)
	}
}
