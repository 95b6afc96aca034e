package config

import (
	"cmp"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kommbridge/kommbridge"
)

// KnowledgeBase is a help center a bot answers from: where its articles
// come from, how they are embedded, and the index file `kommbridge kb
// build` writes and serve loads.
type KnowledgeBase struct {
	Name    string   `yaml:"name"`
	Sources []Source `yaml:"sources"`
	// Embeddings, when set, embeds passages and questions for search by
	// meaning beside keyword search; unset, keyword search only.
	Embeddings *Embeddings `yaml:"embeddings"`
	// Index is the index file (relative to config.yaml).
	Index string `yaml:"index"`
	// Language picks the keyword analyser (stemming, stop words): en, es,
	// fr, de, it, pt, nl, ... (Languages), or "standard" for none; "en"
	// when unset.
	Language string `yaml:"language"`
	// MaxPages caps the pages fetched from one url or sitemap source.
	MaxPages int `yaml:"max_pages"`
}

// Source is one place articles come from: a directory of files, one page,
// or a sitemap. Exactly one of Dir, URL and Sitemap is set.
type Source struct {
	Dir string `yaml:"dir"`
	// URLPrefix makes a file's URL: kb/articles/returns.md with prefix
	// https://help.acme.example/ is https://help.acme.example/returns.
	URLPrefix string `yaml:"url_prefix"`
	URL       string `yaml:"url"`
	Sitemap   string `yaml:"sitemap"`
	// Include keeps only a sitemap's pages whose path starts with one of
	// these prefixes.
	Include []string `yaml:"include"`
}

// Embeddings is the endpoint that embeds passages and questions
// (POST /embeddings), with its own key.
type Embeddings struct {
	BaseURL    string            `yaml:"base_url"`
	APIKey     string            `yaml:"api_key"`
	APIType    APIType           `yaml:"api_type"`
	APIVersion string            `yaml:"api_version"`
	Model      string            `yaml:"model"`
	Headers    map[string]string `yaml:"headers"`
	// Dimensions asks models that can shorten their vectors for this many.
	Dimensions int `yaml:"dimensions"`
	// Timeout bounds embedding one question while a webhook waits; past
	// it, that message is answered from keyword search alone.
	Timeout Duration `yaml:"timeout"`
	// KeyFrom and HeadersFrom say where the key and the headers came
	// from, as Endpoint's.
	KeyFrom     string            `yaml:"-"`
	HeadersFrom map[string]string `yaml:"-"`
}

// Endpoint is the embeddings endpoint as an Endpoint, for what reads
// endpoints (check, the key origins).
func (e *Embeddings) Endpoint() Endpoint {
	return Endpoint{BaseURL: e.BaseURL, APIKey: e.APIKey, APIType: e.APIType, APIVersion: e.APIVersion, Model: e.Model, Headers: e.Headers,
		KeyFrom: e.KeyFrom, HeadersFrom: e.HeadersFrom}
}

// BotKnowledge is how a bot answers from a knowledge base.
type BotKnowledge struct {
	// Base names a knowledge[] entry.
	Base string `yaml:"base"`
	// TopK is how many passages go to the model.
	TopK int `yaml:"top_k"`
	// MinScore is the match score under which a question counts as not
	// in the help center: a number, or auto (the floor kb eval
	// calibrated, else a conservative rule).
	MinScore *MinScore `yaml:"min_score"`
	// OnNoMatch is what a question not in the help center gets.
	OnNoMatch      OnNoMatch `yaml:"on_no_match"`
	NoMatchMessage string    `yaml:"no_match_message"`
	// Cite is how the passages the answer used are shown.
	Cite Cite `yaml:"cite"`
	// HumanButton labels the quick reply shown with no_match_message
	// (on_no_match: message) that asks for a person.
	HumanButton string `yaml:"human_button"`
}

// MinScore is bots[].knowledge.min_score: Auto, or Value.
type MinScore struct {
	Auto  bool
	Value float64
}

// UnmarshalYAML reads "auto" or a number from 0 to 1.
func (m *MinScore) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode && n.Value == "auto" {
		*m = MinScore{Auto: true}
		return nil
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if n.Kind != yaml.ScalarNode || err != nil || v < 0 || v > 1 {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d col %d: must be auto or a number from 0 to 1; got %q", n.Line, n.Column, n.Value)}}
	}
	*m = MinScore{Value: v}
	return nil
}

// String is the score as written.
func (m MinScore) String() string {
	if m.Auto {
		return "auto"
	}
	return strconv.FormatFloat(m.Value, 'g', -1, 64)
}

// OnNoMatch is what a question the help center does not answer gets
// (bots[].knowledge.on_no_match).
type OnNoMatch string

// When nothing in the help center matches.
const (
	NoMatchHandoff OnNoMatch = "handoff" // a handoff (reason not_in_kb), the model not asked
	NoMatchMessage OnNoMatch = "message" // no_match_message with a Talk-to-a-person button
	NoMatchAnswer  OnNoMatch = "answer"  // the model answers without passages
)

// UnmarshalYAML refuses another word.
func (p *OnNoMatch) UnmarshalYAML(n *yaml.Node) error {
	return word(n, p, NoMatchHandoff, NoMatchMessage, NoMatchAnswer)
}

// Cite is how an answer's sources are shown (bots[].knowledge.cite).
type Cite string

// Citation styles.
const (
	CiteButtons Cite = "buttons" // link buttons named by the article title
	CiteLinks   Cite = "links"   // the titles and URLs under the answer's text
	CiteNone    Cite = "none"
)

// UnmarshalYAML refuses another word.
func (p *Cite) UnmarshalYAML(n *yaml.Node) error { return word(n, p, CiteButtons, CiteLinks, CiteNone) }

// Knowledge defaults.
const (
	DefaultTopK           = 5
	DefaultNoMatchMessage = "I couldn't find that in our help center. Let me get a colleague."
	DefaultKBMaxPages     = 500
	// DefaultNoMatchAsk is no_match_message with on_no_match: message.
	DefaultNoMatchAsk = "I couldn't find that in our help center. You can ask it another way, or talk to a person."
)

// Base returns the knowledge base named name, or nil.
func (c *Config) Base(name string) *KnowledgeBase {
	for i := range c.Knowledge {
		if c.Knowledge[i].Name == name {
			return &c.Knowledge[i]
		}
	}
	return nil
}

// Resolve resolves a path of the configuration (an index, a source
// directory) against config.yaml's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Path == "" {
		return p
	}
	return filepath.Join(filepath.Dir(c.Path), p)
}

// knowledgeDefaults fills what a knowledge base and a bot's knowledge
// leave out.
func (c *Config) knowledgeDefaults() {
	for i := range c.Knowledge {
		k := &c.Knowledge[i]
		k.Language = cmp.Or(k.Language, "en")
		if k.MaxPages == 0 {
			k.MaxPages = DefaultKBMaxPages
		}
		if k.Index == "" && k.Name != "" {
			k.Index = filepath.Join("kb", k.Name+".kbx")
		}
		if e := k.Embeddings; e != nil {
			e.APIType = cmp.Or(e.APIType, APIOpenAI)
			if e.APIType == APIAzure && e.APIVersion == "" {
				e.APIVersion = "2024-10-21"
			}
			if e.Timeout == 0 {
				e.Timeout = Duration(2 * time.Second)
			}
		}
	}
	for i := range c.Bots {
		k := c.Bots[i].Knowledge
		if k == nil {
			continue
		}
		if k.TopK == 0 {
			k.TopK = DefaultTopK
		}
		if k.MinScore == nil {
			k.MinScore = &MinScore{Auto: true}
		}
		k.OnNoMatch = cmp.Or(k.OnNoMatch, NoMatchMessage)
		if k.NoMatchMessage == "" {
			k.NoMatchMessage = DefaultNoMatchAsk
			if k.OnNoMatch == NoMatchHandoff {
				k.NoMatchMessage = DefaultNoMatchMessage
			}
		}
		k.Cite = cmp.Or(k.Cite, CiteButtons)
		k.HumanButton = cmp.Or(k.HumanButton, "Talk to a person")
	}
}

// Languages are the keyword analysers a knowledge base may use.
var Languages = []string{"standard", "ar", "cjk", "ckb", "da", "de", "en", "es", "fa", "fi", "fr", "hi", "hr", "hu", "it", "nl", "no", "pl", "pt", "ro", "ru", "sv", "tr"}

func (c *Config) validateKnowledge(p *problems) {
	names := map[string]bool{}
	for i := range c.Knowledge {
		k := &c.Knowledge[i]
		w := fmt.Sprintf("knowledge[%d]", i)
		switch {
		case k.Name == "":
			p.bad(w+".name", "must be set: bots name the base by it")
		case names[k.Name]:
			p.bad(w+".name", "%q is used by more than one knowledge base", k.Name)
		}
		names[k.Name] = true
		if len(k.Sources) == 0 {
			p.bad(w+".sources", "must list at least one source: dir, url or sitemap")
		}
		for j, s := range k.Sources {
			sw := fmt.Sprintf("%s.sources[%d]", w, j)
			n := 0
			for _, v := range []string{s.Dir, s.URL, s.Sitemap} {
				if v != "" {
					n++
				}
			}
			if n != 1 {
				p.bad(sw, "must set exactly one of dir, url and sitemap")
			}
			for key, v := range map[string]string{"url": s.URL, "sitemap": s.Sitemap, "url_prefix": s.URLPrefix} {
				if v == "" {
					continue
				}
				if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
					p.bad(sw+"."+key, "must be an http(s) URL; got %q", v)
				}
			}
			if s.URLPrefix != "" && s.Dir == "" {
				p.bad(sw+".url_prefix", "goes with dir")
			}
			if len(s.Include) > 0 && s.Sitemap == "" {
				p.bad(sw+".include", "goes with sitemap")
			}
		}
		if !slices.Contains(Languages, k.Language) {
			p.bad(w+".language", "must be one of %s; got %q", strings.Join(Languages, ", "), k.Language)
		}
		if k.MaxPages < 1 {
			p.bad(w+".max_pages", "must be at least 1; got %d", k.MaxPages)
		}
		if e := k.Embeddings; e != nil {
			validEndpoint(w+".embeddings", e.Endpoint(), p)
			if e.Dimensions < 0 {
				p.bad(w+".embeddings.dimensions", "must be positive; got %d", e.Dimensions)
			}
			if e.Timeout < 0 {
				p.bad(w+".embeddings.timeout", "must be positive; got %s", e.Timeout.D())
			}
		}
	}
	for i := range c.Bots {
		b := &c.Bots[i]
		k := b.Knowledge
		if k == nil {
			continue
		}
		w := b.Where(i) + ".knowledge"
		switch {
		case k.Base == "":
			p.bad(w+".base", "must name a knowledge base")
		case !names[k.Base]:
			p.bad(w+".base", "names no knowledge base: %q (knowledge[].name)", k.Base)
		}
		if k.TopK < 1 || k.TopK > 20 {
			p.bad(w+".top_k", "must be from 1 to 20; got %d", k.TopK)
		}
	}
}

// Privacy is what personal data is masked before a model reads it.
type Privacy struct {
	// Mask lists the kinds masked: cards (numbers that pass the Luhn
	// check), iban, email, phone; [cards] when unset.
	Mask []MaskKind `yaml:"mask"`
}

// MaskKind is a kind of personal data privacy.mask takes out.
type MaskKind string

// Kinds of masked data.
const (
	MaskCards MaskKind = "cards"
	MaskIBAN  MaskKind = "iban"
	MaskEmail MaskKind = "email"
	MaskPhone MaskKind = "phone"
)

// UnmarshalYAML refuses another word.
func (m *MaskKind) UnmarshalYAML(n *yaml.Node) error {
	return word(n, m, MaskCards, MaskIBAN, MaskEmail, MaskPhone)
}

// Masks is the configuration's privacy.mask as kommbridge's Masks.
func (p Privacy) Masks() kommbridge.Masks {
	return kommbridge.Masks{Cards: slices.Contains(p.Mask, MaskCards), IBAN: slices.Contains(p.Mask, MaskIBAN),
		Email: slices.Contains(p.Mask, MaskEmail), Phone: slices.Contains(p.Mask, MaskPhone)}
}
