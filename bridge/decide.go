package bridge

import (
	"cmp"
	"context"
	"errors"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/kb"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/prompt"
)

// Input is everything decide looks at: the event, the facts handle read
// for it, and, once the model was asked, what it answered.
type Input struct {
	Event *kommbridge.Event
	Now   time.Time
	// HandedOffAt is when the conversation was last handed off; zero if
	// never.
	HandedOffAt time.Time
	// Limited: the event is over a rate limit.
	Limited bool
	// Asked: the model was asked. Reply is its answer, Tokens its token
	// probabilities (nil without logprobs).
	Asked  bool
	Reply  prompt.Parsed
	Tokens []llm.TokenProb
	// Err is the failure behind an answer that could not be made: the
	// model's (classified by llm), the store's, or a template's.
	Err error
	// UserTurn is the user's message as history keeps it; set when the
	// model was asked. Joined are the user's earlier messages that waited
	// with it and are answered with it, oldest first.
	UserTurn string
	Joined   []string
	// Kept is set when the model answered only once the oldest history was
	// dropped (context overflow): the history keeps its last Kept turns.
	Kept *int
	// Form is the bot's form the event posted back, if any; FormMissing
	// the error texts of its required or checked fields that came empty
	// or wrong.
	Form        *kommbridge.Form
	FormMissing []string
	// Knowledge is what the bot's help center found for the message; nil
	// when it was not asked.
	Knowledge *KBFacts
	// Actions are what the model's action calls came to, as history keeps
	// them; Confirm is an action that waits for the user's Yes.
	Actions []string
	Confirm *Confirm
}

// Decision is what the user gets, and what is to be written.
type Decision struct {
	kommbridge.Reply
	// AskModel: nothing is decided before the model answers; ask it and
	// decide again with its answer.
	AskModel bool
	// Turns are appended to history, or replace it when Reset. Trim first
	// cuts the history to its last Keep turns.
	Turns []kommbridge.Turn
	Reset bool
	Trim  bool
	Keep  int
	// MarkHandoff records the handoff (its time starts the cooldown).
	MarkHandoff bool
	// Cooldown: the assignment gives way to an earlier handoff's cooldown
	// (a handoff the model or a failure asked for, not the user). When
	// Input.HandedOffAt was not read, decide again with it.
	Cooldown bool
	// ModelReason is the model's own reason for a handoff it asked for.
	ModelReason string
	// UnknownTeam is a team the model picked that the bot does not list;
	// the handoff goes to the default routing.
	UnknownTeam string
	// Cause is the failure behind an error or busy answer.
	Cause error
	// TemplateErr is a template that failed to render; its default text
	// was used.
	TemplateErr error
	// RichDropped lists the rich parts of the model's answer that broke a
	// rule and were left out; UnknownForm is a form the model asked for
	// that the bot does not have.
	RichDropped []string
	UnknownForm string
	// NoMatch: the help center does not answer the message. Cited are
	// the passages the answer cites; DroppedSources counts the source
	// numbers the model wrote that it was not given.
	NoMatch        bool
	Cited          []kb.Passage
	DroppedSources int
	// Promised: the model's reply said a person would take over without
	// handing off (a false promise), whatever the bot then did with it.
	Promised bool
}

// errNoText is a model reply with nothing usable in it.
var errNoText = errors.New("model reply had no usable text")

// errWaited is a budget spent before the model could be asked: waiting for
// the conversation's previous message, or for the same key's answer.
var errWaited = errors.New("the reply budget was spent waiting")

// decide chooses the answer to an event: every handoff trigger, the error
// policy, the busy answer, cooldown, after-handoff silence and
// include_reply are its cases. It does no I/O: handle reads the facts,
// asks the model when told to, and writes the effects.
//
// Every answer is fitted to the channel it is read on: what the channel
// does not show as a widget becomes numbered text (fitChannel), and the
// history keeps that text, so that a reply "2" means something to the
// model. A file the bot asked for hides the attach button again.
func decide(p *Profile, in Input) Decision {
	d := p.decide(in)
	if d.HandoffReason != "" && p.Hours != nil && !p.Hours.open(in.Now) {
		d.Offline = true
	}
	d.Channel = cmp.Or(p.Channel, in.Event.Channel, kommbridge.ChannelWeb)
	fitted := false
	for i := range d.Messages {
		fitted = fitChannel(&d.Messages[i], d.Channel) || fitted
	}
	if fitted && len(d.Turns) > 0 && d.Turns[len(d.Turns)-1].Role == llm.RoleAssistant {
		d.Turns[len(d.Turns)-1].Text = joinText(d.Messages)
	}
	if p.AskFile && len(in.Event.Attachments) > 0 && len(d.Messages) > 0 &&
		!slices.ContainsFunc(d.Messages, func(m kommbridge.Message) bool { return m.AskFile }) {
		d.Messages[0].FilesDone = true
	}
	return d
}

func (p *Profile) decide(in Input) Decision {
	ev := in.Event
	if in.Err != nil {
		return p.failure(in, in.Err)
	}
	if !in.Asked {
		switch {
		case ev.Name == kommbridge.EventWelcome:
			return p.welcome(in)
		case ev.TalkToHuman:
			return p.handoffNow(in, kommbridge.HandoffButton)
		}
		if len(in.FormMissing) > 0 && in.Form != nil {
			return p.formAgain(in)
		}
		text := strings.TrimSpace(ev.Text)
		if text == "" && len(ev.Attachments) == 0 {
			return Decision{Reply: reply(kommbridge.OutcomeIgnored)}
		}
		if p.asksForPerson(text) {
			return p.handoffNow(in, kommbridge.HandoffUserRequest)
		}
		switch {
		case p.SilentAfter && !in.HandedOffAt.IsZero():
			return Decision{Reply: reply(kommbridge.OutcomeSilent)}
		case in.Limited:
			return Decision{Reply: reply(kommbridge.OutcomeLimited, kommbridge.Message{Text: p.LimitMessage})}
		}
		if k := in.Knowledge; k != nil && p.Knowledge != nil && !p.Knowledge.matches(k) {
			if p.Knowledge.NoMatchAnswer {
				return Decision{AskModel: true, NoMatch: true}
			}
			d := p.notInKB(in)
			d.NoMatch = true
			return d
		}
		return Decision{AskModel: true}
	}
	parsed := in.Reply
	d := p.answered(in, parsed)
	if in.Kept != nil {
		d.Trim, d.Keep = true, *in.Kept
	}
	return d
}

// answered decides on what the model said.
func (p *Profile) answered(in Input, parsed prompt.Parsed) Decision {
	if parsed.Filtered {
		return p.filtered(in)
	}
	if parsed.Text == "" && !parsed.Handoff {
		return p.failure(in, errNoText)
	}
	if parsed.Refusal {
		// The model's own words for declining are the bot's answer.
		msg := kommbridge.Message{Text: parsed.Text}
		d := Decision{Reply: reply(kommbridge.OutcomeAnswered, msg), Turns: in.userTurns(kommbridge.Turn{Role: llm.RoleAssistant, Text: parsed.Text})}
		if p.HandoffOnRefusal {
			hm, mark, err := p.handoffMessage(in, "", true)
			d.Reply = reply(kommbridge.OutcomeHandoff, msg, hm)
			d.HandoffReason, d.MarkHandoff, d.Cooldown, d.TemplateErr = kommbridge.HandoffRefusal, mark, true, err
		}
		return d
	}
	reason := p.handoffReason(parsed, in.Tokens)
	if reason == "" {
		msg := kommbridge.Message{Text: parsed.Text, QuickReplies: quickReplies(parsed.Suggested, p.MaxSuggested)}
		if p.LinkButtons {
			msg.Links = links(parsed.Text)
		}
		var d Decision
		if k := in.Knowledge; k != nil && p.Knowledge != nil {
			d.Cited, d.DroppedSources = cite(parsed.Sources, k.Passages)
			p.Knowledge.withSources(&msg, d.Cited, k.Passages)
		}
		msg.Cards, msg.List, msg.Images, d.RichDropped = p.rich(parsed)
		msg.AskFile = p.AskFile && parsed.AskFile
		if parsed.Form != "" {
			if msg.Form = p.Forms[parsed.Form]; msg.Form == nil {
				d.UnknownForm = parsed.Form
			}
		}
		outcome := kommbridge.OutcomeAnswered
		if p.promisesPerson(parsed.Text) {
			d.Promised = true
			switch {
			case p.PromiseHandoff:
				// The promise is kept: the model's words, and a handoff.
				hm, mark, err := p.handoffMessage(in, "", true)
				msg.Handoff, msg.QuickReplies, msg.Form, msg.AskFile = hm.Handoff, nil, hm.Form, false
				d.Reply = reply(kommbridge.OutcomeHandoff, msg)
				d.HandoffReason, d.MarkHandoff, d.Cooldown, d.TemplateErr = kommbridge.HandoffPromise, mark, true, err
				d.Turns = in.userTurns(kommbridge.Turn{Role: llm.RoleAssistant, Text: parsed.Text})
				return d
			case p.PromiseStrip:
				msg.Text = p.withoutPromises(parsed.Text)
			}
		}
		if c := in.Confirm; c != nil {
			// The change waits for the user's Yes, on buttons of its own.
			confirmation := c.Confirmation
			d.Reply = reply(outcome, msg, kommbridge.Message{Text: c.Text, Confirm: &confirmation})
			d.Turns = in.userTurns(kommbridge.Turn{Role: llm.RoleAssistant, Text: parsed.Text + "\n" + c.Text})
			return d
		}
		if p.ResolveAuto && parsed.Resolved {
			// Solved and confirmed: Kommunicate closes the conversation.
			msg.QuickReplies, msg.Form, msg.AskFile, msg.Resolve, outcome = nil, nil, false, true, kommbridge.OutcomeResolved
		}
		d.Reply = reply(outcome, msg)
		d.Turns = in.userTurns(kommbridge.Turn{Role: llm.RoleAssistant, Text: parsed.Text})
		return d
	}
	d := Decision{ModelReason: parsed.HandoffReason}
	team := ""
	if parsed.Team != "" {
		if id, ok := p.Teams[parsed.Team]; ok {
			team = id
		} else {
			d.UnknownTeam = parsed.Team
		}
	}
	var msgs []kommbridge.Message
	// include_reply shows the words of a model that chose to hand off; an
	// answer judged unreliable (low confidence) is not shown as if it were.
	if p.IncludeReply && parsed.Text != "" && reason == kommbridge.HandoffModel {
		msgs = append(msgs, kommbridge.Message{Text: parsed.Text})
	}
	hm, mark, err := p.handoffMessage(in, team, true)
	d.Reply = reply(kommbridge.OutcomeHandoff, append(msgs, hm)...)
	d.HandoffReason, d.MarkHandoff, d.Cooldown, d.TemplateErr = reason, mark, true, err
	d.Turns = in.userTurns(kommbridge.Turn{Role: llm.RoleAssistant, Text: joinText(d.Messages)})
	return d
}

// userTurns are the turns of the user's messages the model was asked
// about (the joined ones first), what its actions found, then then.
func (in Input) userTurns(then ...kommbridge.Turn) []kommbridge.Turn {
	out := make([]kommbridge.Turn, 0, len(in.Joined)+2+len(then))
	for _, t := range in.Joined {
		out = append(out, kommbridge.Turn{Role: llm.RoleUser, Text: t})
	}
	out = append(out, kommbridge.Turn{Role: llm.RoleUser, Text: in.UserTurn})
	if len(in.Actions) > 0 {
		// What the actions found, for the next message ("and when will it
		// arrive?"): summaries, never the raw answers.
		out = append(out, kommbridge.Turn{Role: llm.RoleAssistant, Text: strings.Join(in.Actions, "\n")})
	}
	return append(out, then...)
}

func reply(outcome string, msgs ...kommbridge.Message) kommbridge.Reply {
	if msgs == nil {
		msgs = []kommbridge.Message{}
	}
	return kommbridge.Reply{Messages: msgs, Outcome: outcome}
}

// busy reports whether err kept the model from being asked in time: no
// call slot, or a budget spent waiting. The model is fine, so nobody is
// handed off.
func busy(err error) bool {
	return errors.Is(err, llm.ErrBusy) || errors.Is(err, llm.ErrNoTime) || errors.Is(err, errWaited)
}

// filtered is the answer when the provider's content filter withheld the
// prompt or the answer: the bot's content filter message, and a handoff
// only when the bot says so. Nothing of the exchange is kept.
func (p *Profile) filtered(in Input) Decision {
	d := Decision{Reply: reply(kommbridge.OutcomeFiltered, kommbridge.Message{Text: p.FilterMessage})}
	if p.HandoffOnFilter {
		hm, mark, err := p.handoffMessage(in, "", true)
		d.Messages = append(d.Messages, hm)
		d.HandoffReason, d.MarkHandoff, d.Cooldown, d.TemplateErr = kommbridge.HandoffContentFilter, mark, true, err
	}
	return d
}

// failure is the answer when no answer could be made: the busy message
// when the model was never asked in time, the content filter's or the
// too-long message for those refusals, else the bot's error policy.
func (p *Profile) failure(in Input, err error) Decision {
	switch {
	case busy(err):
		return Decision{Reply: reply(kommbridge.OutcomeBusy, kommbridge.Message{Text: p.BusyMessage}), Cause: err}
	case errors.Is(err, llm.ErrFiltered):
		d := p.filtered(in)
		d.Cause = err
		return d
	case errors.Is(err, llm.ErrContextOverflow):
		// Even the shortened request did not fit: start the history over
		// so that the next message does.
		return Decision{Reply: reply(kommbridge.OutcomeTooLong, kommbridge.Message{Text: p.TooLongMessage}), Cause: err, Trim: true}
	}
	text, rerr := p.ErrorText.Render(vars(in.Event, in.Now))
	if rerr != nil || strings.TrimSpace(text) == "" {
		text = p.DefaultError
	}
	d := Decision{Reply: reply(kommbridge.OutcomeError, kommbridge.Message{Text: text}), Cause: err, TemplateErr: rerr}
	if in.Asked {
		d.Turns = in.userTurns()
	}
	if p.HandoffOnErr {
		d.HandoffReason = kommbridge.HandoffError
		if errors.Is(err, llm.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			d.HandoffReason = kommbridge.HandoffTimeout
		}
		hm, mark, herr := p.handoffMessage(in, "", true)
		d.Messages = append(d.Messages, hm)
		d.Outcome, d.MarkHandoff, d.Cooldown = kommbridge.OutcomeHandoff, mark, true
		d.TemplateErr = errors.Join(d.TemplateErr, herr)
	}
	return d
}

func (p *Profile) welcome(in Input) Decision {
	text, err := p.Welcome.Render(vars(in.Event, in.Now))
	text = strings.TrimSpace(text)
	d := Decision{Reply: reply(kommbridge.OutcomeWelcome), Reset: true, TemplateErr: err}
	if text != "" {
		d.Messages = append(d.Messages, kommbridge.Message{Text: text, QuickReplies: quickReplies(p.WelcomeReplies, len(p.WelcomeReplies))})
		d.Turns = []kommbridge.Turn{{Role: llm.RoleAssistant, Text: text}}
	}
	return d
}

// formAgain answers a form posted back with required fields empty (or
// values its checks refuse): what is missing, and the form again (the
// widget disables a form once sent). The model is not asked.
func (p *Profile) formAgain(in Input) Decision {
	f := *in.Form
	f.Text = ""
	return Decision{Reply: reply(kommbridge.OutcomeFormIncomplete, kommbridge.Message{Text: strings.Join(in.FormMissing, " "), Form: &f})}
}

// handoffNow hands off without asking the model: the user asked, by the
// button or in words. It always assigns, cooldown or not: the widget
// disables its "Talk to human" button on a press and enables it again only
// on a message carrying KM_ASSIGN_TO "". A bot whose assign_to names
// another bot sends these requests for a person to Kommunicate's routing
// rules instead (AssignToBot), which also re-arms the button.
func (p *Profile) handoffNow(in Input, reason string) Decision {
	hm, mark, err := p.handoffMessage(in, "", false)
	if p.AssignToBot && hm.Handoff != nil {
		hm.Handoff.AssignTo = ""
	}
	d := Decision{Reply: reply(kommbridge.OutcomeHandoff, hm), MarkHandoff: mark, TemplateErr: err,
		Turns: []kommbridge.Turn{{Role: llm.RoleUser, Text: in.Event.Text}, {Role: llm.RoleAssistant, Text: hm.Text}}}
	d.HandoffReason = reason
	return d
}

// handoffMessage is the handoff message, with the bot's handoff form.
// Out of the team's hours it still assigns (people see it next shift) but
// says when to expect them, with the offline form. With cooldown, within
// the cooldown of an earlier handoff the assignment is not sent again;
// mark says whether this handoff is to be recorded.
func (p *Profile) handoffMessage(in Input, team string, cooldown bool) (kommbridge.Message, bool, error) {
	tpl, form, v := p.HandoffText, p.HandoffForm, vars(in.Event, in.Now)
	if p.Hours != nil && !p.Hours.open(in.Now) {
		tpl, v.Opens = p.OfflineText, p.Hours.opens(in.Now)
		if p.OfflineForm != nil {
			form = p.OfflineForm
		}
	}
	text, err := tpl.Render(v)
	if err != nil || strings.TrimSpace(text) == "" {
		text = p.DefaultHandoff
	}
	msg := kommbridge.Message{Text: text, Form: form, Handoff: &kommbridge.Handoff{AssignTo: p.AssignTo, Team: team}}
	if cooldown && !in.HandedOffAt.IsZero() && in.Now.Sub(in.HandedOffAt) < p.Cooldown {
		msg.Handoff = nil
		return msg, false, err
	}
	return msg, true, err
}

// promisesPerson reports whether a reply says a person will take over.
func (p *Profile) promisesPerson(text string) bool {
	if len(p.promises) == 0 || text == "" {
		return false
	}
	w := words(text)
	for _, ph := range p.promises {
		if containsPhrase(w, ph) {
			return true
		}
	}
	return false
}

// withoutPromises is text without its sentences that promise a person;
// when nothing else is left, an offer to help further.
func (p *Profile) withoutPromises(text string) string {
	var kept []string
	for _, s := range sentences.FindAllString(text, -1) {
		if !p.promisesPerson(s) {
			kept = append(kept, strings.TrimSpace(s))
		}
	}
	if len(kept) == 0 {
		return "Is there anything else I can help you with?"
	}
	return strings.Join(kept, " ")
}

var sentences = regexp.MustCompile(`[^.!?]+[.!?]*`)

// asksForPerson reports whether text holds one of the handoff phrases, or
// is the label of the no-match message's button.
func (p *Profile) asksForPerson(text string) bool {
	if k := p.Knowledge; k != nil && text != "" && strings.EqualFold(strings.TrimSpace(text), k.HumanButton) {
		return true // the no-match message's button, where no metadata comes with a click
	}
	if len(p.phrases) == 0 || text == "" {
		return false
	}
	w := words(text)
	for _, ph := range p.phrases {
		if containsPhrase(w, ph) {
			return true
		}
	}
	return false
}

// handoffReason decides whether the model's answer hands off, and why;
// "" means it does not.
func (p *Profile) handoffReason(parsed prompt.Parsed, tokens []llm.TokenProb) string {
	switch {
	case parsed.Handoff:
		return kommbridge.HandoffModel
	case parsed.Confidence != nil && *parsed.Confidence < p.MinConfidence:
		return kommbridge.HandoffLowConfidence
	case p.MinTokenConfidence > 0 && len(tokens) > 0 && meanProb(tokens) < p.MinTokenConfidence:
		return kommbridge.HandoffLowConfidence
	}
	return ""
}

func meanProb(tokens []llm.TokenProb) float64 {
	var sum float64
	for _, t := range tokens {
		sum += t.Prob
	}
	return sum / float64(len(tokens))
}

// vars are the template values of ev at now.
func vars(ev *kommbridge.Event, now time.Time) prompt.Vars {
	lang := ev.Language()
	if lang == "" {
		lang = "the user's language"
	}
	return prompt.Vars{
		BotID:          ev.BotID,
		UserID:         ev.UserID,
		ConversationID: ev.ConversationID,
		Language:       lang,
		Context:        ev.Context,
		Now:            now,
	}
}

// quickReplies keeps at most max suggestions, trimmed and without repeats.
func quickReplies(suggested []string, max int) []string {
	if max <= 0 || len(suggested) == 0 {
		return nil
	}
	out := make([]string, 0, min(max, len(suggested)))
	for _, s := range suggested {
		s = strings.TrimSpace(s)
		s = kommbridge.Clip(s, maxRichText)
		if s == "" || slices.Contains(out, s) {
			continue
		}
		out = append(out, s)
		if len(out) == max {
			break
		}
	}
	return out
}

var (
	markdownLink = regexp.MustCompile(`\[([^\]\n]{1,80})\]\((https://[^\s<>()"']+)\)`)
	httpsLink    = regexp.MustCompile(`https://[^\s<>()"'\]\[]+[^\s<>()"'.,;:!?\]\[]`)
)

// links finds the links of a reply that the widget may open, for link
// buttons, at most 5, in the order they appear: a Markdown link is named
// by its own text, a bare URL by its host and last path segment; a link
// already found is not repeated.
func links(text string) []kommbridge.Link {
	type found struct {
		at        int
		name, url string
	}
	var all []found
	for _, m := range markdownLink.FindAllStringSubmatchIndex(text, -1) {
		all = append(all, found{m[0], strings.TrimSpace(text[m[2]:m[3]]), text[m[4]:m[5]]})
	}
	// Bare URLs, outside the Markdown links (blanked, so positions hold).
	rest := markdownLink.ReplaceAllStringFunc(text, func(m string) string { return strings.Repeat(" ", len(m)) })
	for _, m := range httpsLink.FindAllStringIndex(rest, -1) {
		u := rest[m[0]:m[1]]
		all = append(all, found{m[0], linkName(u), u})
	}
	slices.SortFunc(all, func(a, b found) int { return a.at - b.at })
	var out []kommbridge.Link
	for _, f := range all {
		if len(out) == 5 {
			break
		}
		if kommbridge.SafeLink(f.url) && !slices.ContainsFunc(out, func(l kommbridge.Link) bool { return l.URL == f.url }) {
			out = append(out, kommbridge.Link{Name: f.name, URL: f.url})
		}
	}
	return out
}

// linkName names a bare URL: its host, and its last path segment if any
// ("acme.example/returns").
func linkName(u string) string {
	rest := strings.TrimPrefix(u, "https://")
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	host, path, _ := strings.Cut(rest, "/")
	path = strings.Trim(path, "/")
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		path = path[i+1:]
	}
	if path == "" {
		return host
	}
	return host + "/" + path
}

func joinText(msgs []kommbridge.Message) string {
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		parts[i] = m.Text
	}
	return strings.Join(parts, "\n")
}
