package config

import (
	"cmp"
	"net/url"
	"time"

	"go.yaml.in/yaml/v3"
)

// Summary is the note for the agent posted into a conversation on every
// handoff (handoff.summary).
type Summary struct {
	Enabled bool `yaml:"enabled"`
	// Model writes the note's second part; the bot's model when unset.
	Model    string `yaml:"model"`
	MaxWords int    `yaml:"max_words"`
	// Timeout bounds the model's part; past it the note holds what
	// kommbridge knows without it.
	Timeout Duration `yaml:"timeout"`
	// NotifyURL, when set, also gets the note as JSON (Slack, a CRM),
	// signed with NotifySecret (X-Kommbridge-Signature: sha256=HMAC).
	NotifyURL    string `yaml:"notify_url"`
	NotifySecret string `yaml:"notify_secret"`
}

// FalsePromise is what a reply that promises a person without handing off
// gets (handoff.on_false_promise).
type FalsePromise string

// On a false promise.
const (
	PromiseHandoff FalsePromise = "handoff" // the promise is kept: a real handoff
	PromiseStrip   FalsePromise = "strip"   // the promising sentences are taken out
	PromiseAllow   FalsePromise = "allow"   // left as it is (counted and logged)
)

// UnmarshalYAML refuses another word.
func (p *FalsePromise) UnmarshalYAML(n *yaml.Node) error {
	return word(n, p, PromiseHandoff, PromiseStrip, PromiseAllow)
}

// Outcomes configures the record kept of each conversation's outcome.
type Outcomes struct {
	// ResolveWindow is how long after the bot's last answer, without a
	// handoff or a new message, a conversation counts as resolved by the
	// bot.
	ResolveWindow Duration `yaml:"resolve_window"`
	// TTL is how long a conversation's record is kept.
	TTL Duration `yaml:"ttl"`
}

// DefaultPromisePhrases are the phrases of a reply that promise a person,
// in the languages kommbridge's bots most often speak; handoff.
// promise_phrases adds to them.
var DefaultPromisePhrases = []string{
	"transfer you", "transferring you", "connect you with", "connecting you with", "connect you to", "connecting you to",
	"put you through", "hand you over", "pass you to", "a colleague will", "a teammate will", "an agent will", "a human will",
	"someone from our team will", "a member of our team will", "someone will get back to you", "will get back to you shortly",
	"te transfiero", "te paso con", "un agente te", "un compañero te", "un asesor te",
	"je vous transfère", "je vous mets en relation", "un conseiller va", "un agent va",
	"ich verbinde sie", "ich leite sie weiter", "ein kollege wird", "eine kollegin wird", "ein mitarbeiter wird",
	"vou transferir", "um atendente vai", "ti trasferisco", "un operatore ti",
}

func (c *Config) agentDefaults() {
	for i := range c.Bots {
		h := &c.Bots[i].Handoff
		h.OnFalsePromise = cmp.Or(h.OnFalsePromise, PromiseHandoff)
		s := &h.Summary
		if s.MaxWords == 0 {
			s.MaxWords = 120
		}
		if s.Timeout == 0 {
			s.Timeout = Duration(8 * time.Second)
		}
	}
	if c.Outcomes.ResolveWindow == 0 {
		c.Outcomes.ResolveWindow = Duration(30 * time.Minute)
	}
	if c.Outcomes.TTL == 0 {
		c.Outcomes.TTL = Duration(30 * 24 * time.Hour)
	}
}

func (c *Config) validateAgents(p *problems) {
	for i := range c.Bots {
		b := &c.Bots[i]
		s := b.Handoff.Summary
		w := b.Where(i) + ".handoff.summary"
		if !s.Enabled {
			continue
		}
		if c.Kommunicate.APIKey == "" && s.NotifyURL == "" {
			p.bad(w, "needs kommunicate.api_key (the note is posted into the conversation) or notify_url")
		}
		if s.MaxWords < 20 || s.MaxWords > 400 {
			p.bad(w+".max_words", "must be from 20 to 400; got %d", s.MaxWords)
		}
		if s.NotifyURL != "" {
			if u, err := url.Parse(s.NotifyURL); err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
				p.bad(w+".notify_url", "must be an http(s) URL; got %q", s.NotifyURL)
			}
			if s.NotifySecret == "" {
				p.bad(w+".notify_secret", "must be set with notify_url: the receiver checks the signature")
			}
		}
	}
	if c.Outcomes.ResolveWindow.D() < time.Minute {
		p.bad("outcomes.resolve_window", "must be at least 1m; got %s", c.Outcomes.ResolveWindow.D())
	}
	if c.Outcomes.TTL.D() < c.Outcomes.ResolveWindow.D() {
		p.bad("outcomes.ttl", "must be at least outcomes.resolve_window")
	}
}
