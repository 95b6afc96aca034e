package bridge

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/action"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/media"
	"github.com/kommbridge/kommbridge/prompt"
)

// settings is a configuration compiled for the hot path, once per load or
// reload: a Profile per bot, and what the bots share.
type settings struct {
	byID     map[string]*Profile
	fallback *Profile // the "*" bot, nil if none
	budget   time.Duration
	// maxMessage bounds the characters of a message's text (0: none).
	maxMessage int
	// actions makes the configuration's action calls; confirm is how
	// changes are confirmed and users verified.
	actions *action.Runner
	confirm confirmSettings
	// masks are the kinds of personal data taken out of every event
	// before anything reads it.
	masks kommbridge.Masks
	// outcomeTTL is how long a conversation's outcome record is kept.
	outcomeTTL time.Duration
}

// Profile is one bot, compiled: its templates parsed, its phrases
// normalised, its thresholds and messages resolved. It holds nothing of
// config's, so that the pipeline does not depend on the file's shape.
type Profile struct {
	ID          string
	Model       string // "" for the endpoint's
	Temperature *float32
	MaxTokens   int
	Format      kommbridge.ReplyFormat
	contract    prompt.Contract

	System, Welcome, HandoffText, ErrorText *prompt.Template
	Events                                  map[string]*prompt.Template
	WelcomeReplies                          []string
	// DefaultHandoff and DefaultError stand in when their templates
	// render empty.
	DefaultHandoff, DefaultError string

	MaxSuggested       int
	LinkButtons        bool
	Vision             bool
	ImageDetail        string
	MinConfidence      float64
	MinTokenConfidence float64
	phrases            [][]string

	AssignTo string
	// AssignToBot: AssignTo names a bot; a user's own request for a person
	// goes to Kommunicate's routing rules instead.
	AssignToBot  bool
	Teams        map[string]string // name the model may pick -> Kommunicate team id
	HandoffOnErr bool              // on_error: handoff
	IncludeReply bool
	SilentAfter  bool // after: silent
	Cooldown     time.Duration
	Async        bool
	HoldAfter    time.Duration
	HoldMessage  string
	AsyncMaxWait time.Duration

	// LimitMessage and BusyMessage are limits.message and
	// limits.busy_message, shared by every bot.
	LimitMessage, BusyMessage string
	// FilterMessage and TooLongMessage answer a filtered exchange and a
	// message over the model's context.
	FilterMessage, TooLongMessage     string
	HandoffOnRefusal, HandoffOnFilter bool
	// ResolveAuto lets the model close conversations as resolved.
	ResolveAuto bool

	// Channel is the bot's channel when set (bots[].channel), "" to take
	// the webhook's (else the web widget).
	Channel string
	// RichKinds are the rich answers the model may give; AskFile lets it
	// open the attach button.
	RichKinds map[string]bool
	AskFile   bool
	// Forms are the bot's forms by name; HandoffForm goes with a handoff,
	// OfflineForm with one out of hours.
	Forms                    map[string]*kommbridge.Form
	HandoffForm, OfflineForm *kommbridge.Form
	// Hours are the team's opening hours (nil: always open); out of them
	// a handoff says OfflineText.
	Hours       *hours
	OfflineText *prompt.Template
	// Knowledge is the bot's help center, nil without one.
	Knowledge *knowledge
	// promises are the phrases of a reply that promise a person; a reply
	// holding one without handing off is kept (PromiseHandoff), has them
	// taken out (PromiseStrip), or is left (neither).
	promises                     [][]string
	PromiseHandoff, PromiseStrip bool
	// Summary is the bot's handoff notes, nil when off.
	Summary *summarySettings
	// Actions are the actions the bot may call, at most MaxActionRounds
	// rounds of calls per message.
	Actions         []string
	MaxActionRounds int

	// wholes caches the system message (the rendered prompt with the
	// contract's instructions) by rendered prompt: most bots render a
	// handful (one per language), and the message is a few kilobytes.
	wholes     sync.Map
	wholeCount atomic.Int32
}

// maxWholes bounds the cached system messages per bot (prompts that vary
// per user, such as ones naming the user, are built each time past it).
const maxWholes = 64

// wholeSystem is the system message for a rendered prompt.
func (p *Profile) wholeSystem(rendered string) string {
	if w, ok := p.wholes.Load(rendered); ok {
		return w.(string)
	}
	w := rendered + p.contract.Instructions
	if p.wholeCount.Load() < maxWholes {
		if _, loaded := p.wholes.LoadOrStore(rendered, w); !loaded {
			p.wholeCount.Add(1)
		}
	}
	return w
}

// CheckTemplates reports the bots' templates that do not parse, each
// naming its key; config.Load runs it with the rest of the validation.
func CheckTemplates(cfg *config.Config) []error {
	_, errs := compile(cfg)
	return errs
}

// compile builds the settings of cfg; errors name the keys at fault.
func compile(cfg *config.Config) (*settings, []error) {
	s := &settings{
		byID:       make(map[string]*Profile, len(cfg.Bots)),
		budget:     cfg.Server.ReplyBudget.D(),
		maxMessage: cfg.Limits.MaxMessageChars,
	}
	var errs []error
	runner, err := action.New(cfg.Actions, media.FetchOptions{AllowedHosts: cfg.Media.AllowedHosts})
	if err != nil {
		errs = append(errs, err)
	}
	s.actions = runner
	s.masks = cfg.Privacy.Masks()
	s.outcomeTTL = cfg.Outcomes.TTL.D()
	cf := cfg.Confirmations
	s.confirm = confirmSettings{ttl: cf.TTL.D(), yes: cf.Yes, no: cf.No, cancelled: cf.CancelledMessage, invalid: cf.InvalidMessage, done: cf.DoneMessage,
		identitySecret: cfg.Identity.Secret, identityKey: cfg.Identity.ContextKey, signIn: cfg.Identity.SignInMessage}
	for i := range cfg.Bots {
		p, perrs := newProfile(&cfg.Bots[i])
		p.LimitMessage, p.BusyMessage = cfg.Limits.Message, cfg.Limits.BusyMessage
		for _, err := range perrs {
			errs = append(errs, fmt.Errorf("%s.%w", cfg.Bots[i].Where(i), err))
		}
		if p.ID == "*" {
			s.fallback = p
		} else {
			s.byID[p.ID] = p
		}
	}
	return s, errs
}

func newProfile(b *config.Bot) (*Profile, []error) {
	teams := make([]string, 0, len(b.Handoff.Teams))
	for name := range b.Handoff.Teams {
		teams = append(teams, name)
	}
	sort.Strings(teams)
	h := b.Handoff
	p := &Profile{
		ID: b.ID, Model: b.Model, Temperature: b.Temperature, MaxTokens: b.MaxTokens, Format: kommbridge.ReplyFormat(b.ReplyFormat),
		WelcomeReplies: b.Welcome.SuggestedReplies, DefaultHandoff: h.Message, DefaultError: h.ErrorMessage,
		MaxSuggested: *b.SuggestedReplies.Max, LinkButtons: b.LinkButtons, Vision: b.Vision == nil || *b.Vision,
		ImageDetail: string(b.ImageDetail), MinConfidence: *h.MinConfidence, MinTokenConfidence: h.MinTokenConfidence,
		AssignTo: h.AssignTo, AssignToBot: h.AssignToBot, Teams: h.Teams, HandoffOnErr: h.OnError == config.OnErrorHandoff, IncludeReply: h.IncludeReply,
		SilentAfter: h.After == config.AfterSilent, Cooldown: h.Cooldown.D(),
		Async: b.Async.Enabled, HoldAfter: b.Async.HoldAfter.D(), HoldMessage: b.Async.HoldMessage, AsyncMaxWait: b.Async.MaxWait.D(),
		FilterMessage: b.ContentFilterMessage, TooLongMessage: b.TooLongMessage,
		HandoffOnRefusal: h.OnRefusal == config.OnRefusalHandoff, HandoffOnFilter: h.OnContentFilter == config.OnFilterHandoff,
		ResolveAuto: b.Resolve == config.ResolveAuto,
	}
	if b.Channel != config.ChannelAuto {
		p.Channel = string(b.Channel)
	}
	p.RichKinds = make(map[string]bool, len(b.Rich))
	rich := make([]string, len(b.Rich))
	for i, k := range b.Rich {
		p.RichKinds[string(k)] = true
		rich[i] = string(k)
	}
	p.AskFile = b.AskForFiles
	p.Forms = make(map[string]*kommbridge.Form, len(b.Forms))
	formNames := make([]string, 0, len(b.Forms))
	for name, f := range b.Forms {
		p.Forms[name] = newForm(name, f)
		formNames = append(formNames, name)
	}
	sort.Strings(formNames)
	p.HandoffForm, p.OfflineForm = visibleValues(p.Forms[h.Form]), visibleValues(p.Forms[h.OfflineForm])
	p.contract = prompt.NewContract(prompt.ContractOptions{
		Format: kommbridge.ReplyFormat(b.ReplyFormat), Teams: teams, MaxSuggested: p.MaxSuggested, NoVision: !p.Vision, Resolve: p.ResolveAuto,
		Rich: rich, Forms: formNames, AskFile: p.AskFile, Sources: b.Knowledge != nil, Actions: len(b.Actions) > 0,
	})
	p.Actions, p.MaxActionRounds = b.Actions, b.MaxActionRounds
	p.Summary = newSummary(h.Summary, b.Model)
	p.Knowledge = newKnowledge(b.Knowledge)
	for _, ph := range h.Phrases {
		if w := words(ph); len(w) > 0 {
			p.phrases = append(p.phrases, w)
		}
	}
	for _, ph := range append(slices.Clone(config.DefaultPromisePhrases), h.PromisePhrases...) {
		if w := words(ph); len(w) > 0 {
			p.promises = append(p.promises, w)
		}
	}
	p.PromiseHandoff, p.PromiseStrip = h.OnFalsePromise == config.PromiseHandoff, h.OnFalsePromise == config.PromiseStrip
	var errs []error
	parse := func(key, text string) *prompt.Template {
		t, err := prompt.ParseTemplate(key, text)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
		return t
	}
	p.System = parse("system_prompt", b.SystemPrompt)
	p.Welcome = parse("welcome.text", b.Welcome.Text)
	p.HandoffText = parse("handoff.message", h.Message)
	p.ErrorText = parse("handoff.error_message", h.ErrorMessage)
	if h.Hours != nil {
		var herrs []error
		p.Hours, herrs = parseHours(h.Hours)
		errs = append(errs, herrs...)
		p.OfflineText = parse("handoff.offline_message", h.OfflineMessage)
	}
	p.Events = make(map[string]*prompt.Template, len(b.Events))
	for name, text := range b.Events {
		if t := parse("events."+name, text); t != nil {
			p.Events[name] = t
		}
	}
	return p, errs
}

func (s *settings) bot(id string) *Profile {
	if p, ok := s.byID[id]; ok {
		return p
	}
	return s.fallback
}

// newForm compiles a configured form: a required field without a regex
// gets one that refuses an empty value.
func newForm(name string, f config.Form) *kommbridge.Form {
	out := &kommbridge.Form{Name: name, Text: f.Text, Submit: f.Submit}
	for _, fd := range f.Fields {
		field := kommbridge.FormField{Name: fd.Name, Label: fd.Label, Type: string(fd.Type), Placeholder: fd.Placeholder,
			Required: fd.Required, Regex: fd.Regex, Error: fd.Error, Options: fd.Options, Value: fd.Value}
		if fd.Required && field.Regex == "" && textual(field.Type) {
			field.Regex = `\S`
		}
		if (field.Regex != "" || fd.Required) && field.Error == "" {
			field.Error = "Please fill in " + fd.Label + "."
			if !textual(field.Type) {
				field.Error = "Please choose " + fd.Label + "."
			}
		}
		out.Fields = append(out.Fields, field)
	}
	return out
}

// textual reports whether a field of type t takes typed text.
func textual(t string) bool {
	return t == "text" || t == "textarea" || t == "password"
}

// visibleValues is a copy of f whose submit posts the values as visible
// text too: a form sent with a handoff is read by the people taking over,
// to whom the bot's post-back does not go.
func visibleValues(f *kommbridge.Form) *kommbridge.Form {
	if f == nil {
		return nil
	}
	c := *f
	c.ShowValues = true
	return &c
}
