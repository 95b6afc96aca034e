package bridge

import (
	"context"
	"errors"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/kb"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/prompt"
)

// Knowledge gives the bridge the help centers bots answer from, by name;
// *kb.Library is one. Get returns nil for a name it does not serve.
type Knowledge interface {
	Get(base string) kb.Retriever
}

// Gaps records the questions the help center did not answer, for
// `kommbridge kb gaps`; the stores implement it.
type Gaps interface {
	RecordGap(ctx context.Context, base, question string) error
}

// knowledge is a bot's help-center settings, compiled.
type knowledge struct {
	Base string
	TopK int
	// MinAuto: the floor is the index's calibrated one, else the rule
	// that a question unrelated to every passage is no match; otherwise
	// Min.
	MinAuto bool
	Min     float64
	// On no match: hand off (NoMatchHandoff), let the model answer
	// without passages (NoMatchAnswer), else the no-match message.
	NoMatchHandoff, NoMatchAnswer bool
	NoMatch                       string
	// Sources shown as link buttons (CiteButtons), as lines under the
	// text (CiteLinks), or not at all.
	CiteButtons, CiteLinks bool
	HumanButton            string
}

func newKnowledge(k *config.BotKnowledge) *knowledge {
	if k == nil {
		return nil
	}
	return &knowledge{Base: k.Base, TopK: k.TopK, MinAuto: k.MinScore.Auto, Min: k.MinScore.Value,
		NoMatchHandoff: k.OnNoMatch == config.NoMatchHandoff, NoMatchAnswer: k.OnNoMatch == config.NoMatchAnswer, NoMatch: k.NoMatchMessage,
		CiteButtons: k.Cite == config.CiteButtons, CiteLinks: k.Cite == config.CiteLinks, HumanButton: k.HumanButton}
}

// KBFacts is what the help center gave for a message: the passages the
// model is given, numbered from 1 in their order, and the scores decide
// judges "not in the help center" on.
type KBFacts struct {
	Passages  []kb.Passage
	Best      float64
	Unrelated bool
	// Floor is the index's calibrated floor, when Calibrated.
	Floor      float64
	Calibrated bool
	// Err is a search that failed: the model answers, told that nothing
	// was found.
	Err error
}

// matches reports whether the help center answers the message: its best
// passage reaches the floor (min_score, or the calibrated one), or, with
// min_score auto before calibration, the message is related to some
// passage. A failed search is no judgement: the model answers.
func (k *knowledge) matches(f *KBFacts) bool {
	switch {
	case f.Err != nil:
		return true
	case !k.MinAuto:
		return f.Best >= k.Min
	case f.Calibrated:
		return f.Best >= f.Floor
	}
	return !f.Unrelated
}

// notInKB is the answer to a message the help center does not answer,
// without the model: a handoff (reason not_in_kb, the no-match message
// unless the team is away) or the no-match message with a button to ask
// for a person.
func (p *Profile) notInKB(in Input) Decision {
	k := p.Knowledge
	if k.NoMatchHandoff {
		hm, mark, err := p.handoffMessage(in, "", true)
		if p.Hours == nil || p.Hours.open(in.Now) {
			hm.Text = k.NoMatch
		}
		d := Decision{Reply: reply(kommbridge.OutcomeHandoff, hm), MarkHandoff: mark, Cooldown: true, TemplateErr: err,
			Turns: in.userTurns(kommbridge.Turn{Role: llm.RoleAssistant, Text: hm.Text})}
		d.HandoffReason = kommbridge.HandoffNotInKB
		return d
	}
	msg := kommbridge.Message{Text: k.NoMatch, HumanButton: k.HumanButton}
	return Decision{Reply: reply(kommbridge.OutcomeNotInKB, msg), Turns: in.userTurns(kommbridge.Turn{Role: llm.RoleAssistant, Text: msg.Text})}
}

// maxCitations is the most sources shown under an answer.
const maxCitations = 3

// cite keeps the sources the model named that it was given, once each,
// in its order; dropped counts the numbers it was not given.
func cite(sources []int, given []kb.Passage) (cited []kb.Passage, dropped int) {
	seen := map[string]bool{}
	for _, n := range sources {
		if n < 1 || n > len(given) {
			dropped++
			continue
		}
		p := given[n-1]
		if seen[p.URL+"\x00"+p.Title] {
			continue
		}
		seen[p.URL+"\x00"+p.Title] = true
		cited = append(cited, p)
	}
	return cited, dropped
}

// withSources shows the cited passages on msg as the bot's cite style
// says: link buttons named by the article's title, or the titles and URLs
// under the text. A passage without a URL is named in the text only. Of
// the links the model wrote itself, only those to a passage it was given
// stay buttons: a link a model made up never looks like a source.
func (k *knowledge) withSources(msg *kommbridge.Message, cited, given []kb.Passage) {
	msg.Links = slices.DeleteFunc(msg.Links, func(l kommbridge.Link) bool {
		return !slices.ContainsFunc(given, func(p kb.Passage) bool { return p.URL == l.URL })
	})
	if len(cited) > maxCitations {
		cited = cited[:maxCitations]
	}
	switch {
	case k.CiteButtons:
		var named []string
		for _, p := range cited {
			switch {
			case kommbridge.SafeLink(p.URL) && !slices.ContainsFunc(msg.Links, func(l kommbridge.Link) bool { return l.URL == p.URL }):
				msg.Links = append(msg.Links, kommbridge.Link{Name: p.Title, URL: p.URL})
			case !kommbridge.SafeLink(p.URL):
				named = append(named, p.Title)
			}
		}
		if len(named) > 0 {
			msg.Text += "\n\nSource: " + strings.Join(named, "; ")
		}
	case k.CiteLinks:
		var lines []string
		for _, p := range cited {
			if kommbridge.SafeLink(p.URL) {
				lines = append(lines, p.Title+": "+p.URL)
			} else {
				lines = append(lines, p.Title)
			}
		}
		if len(lines) > 0 {
			msg.Text += "\n\nSources:\n" + strings.Join(lines, "\n")
		}
	}
}

// KBResult is what the help center did for an event, for logs and
// metrics.
type KBResult struct {
	Base string
	// Found: the help center matched the message; Mode how it was
	// searched (keyword alone when embeddings failed); Best the best
	// passage's match.
	Found    bool
	Mode     kb.Mode
	Best     float64
	Passages []string // ids of the passages given
	Cited    []Citation
	// Dropped counts the source numbers the model wrote that it was not
	// given.
	Dropped  int
	EmbedErr error
	Err      error
}

// Result is the search's result as logs and metrics name it: found,
// not_found or failed.
func (k *KBResult) Result() string {
	switch {
	case k.Err != nil:
		return "failed"
	case !k.Found:
		return "not_found"
	}
	return "found"
}

// Citation is a passage an answer cites.
type Citation struct{ ID, Title, URL string }

// question is what the help center is asked for the event: the user's
// words, with the message before them when these are few ("and for
// Spain?"); "" when the event is not a question of the user's (an event,
// a form, a file without a caption).
func (e *event) question(history []kommbridge.Turn) string {
	ev := e.ev
	if (ev.Name != "" && ev.Name != kommbridge.EventMedia) || len(ev.Form) > 0 {
		return ""
	}
	q := strings.TrimSpace(ev.Text)
	if q == "" {
		return ""
	}
	if len(strings.Fields(q)) >= 4 {
		return q
	}
	prev := ""
	if n := len(e.joined); n > 0 {
		prev = e.joined[n-1]
	} else {
		for i := len(history) - 1; i >= 0; i-- {
			if history[i].Role == llm.RoleUser {
				prev = history[i].Text
				break
			}
		}
	}
	if prev == "" {
		return q
	}
	return prev + "\n" + q
}

// retrieve asks the bot's help center about the event; nil when the bot
// has none or the event is no question. Whether the passages answer it is
// decide's to say (Decision.NoMatch).
func (e *event) retrieve(ctx context.Context, q string) (*KBFacts, *KBResult) {
	k := e.p.Knowledge
	res := &KBResult{Base: k.Base, Found: true}
	facts := &KBFacts{}
	r := e.b.knowledge.Get(k.Base)
	if r == nil {
		facts.Err = errors.New("knowledge base " + k.Base + " is not loaded")
		res.Err = facts.Err
		return facts, res
	}
	h, err := r.Retrieve(ctx, q, k.TopK)
	if err != nil {
		facts.Err, res.Err = err, err
		e.b.log.Warn("help center search failed; the model answers without passages", zap.String("base", k.Base), zap.Error(err))
		return facts, res
	}
	facts.Passages, facts.Best, facts.Unrelated = h.Passages, h.Best, h.Unrelated
	facts.Floor, facts.Calibrated = r.Floor()
	res.Mode, res.Best, res.EmbedErr = h.Mode, h.Best, h.EmbedErr
	for _, p := range h.Passages {
		res.Passages = append(res.Passages, p.ID)
	}
	if h.EmbedErr != nil {
		e.b.log.Warn("question not embedded; searched by keywords", zap.String("base", k.Base), e.b.errField(h.EmbedErr))
	}
	return facts, res
}

// consult asks the help center about the event and puts what it found
// into in; a non-nil Result is the answer when the help center does not
// answer the message and the model is not to be asked.
func (e *event) consult(ctx context.Context, in *Input, history []kommbridge.Turn) *Result {
	q := e.question(history)
	if q == "" {
		return nil
	}
	in.Knowledge, e.kres = e.retrieve(ctx, q)
	d := e.settle(ctx, *in)
	if !d.NoMatch {
		return nil
	}
	e.noMatch(q, in.Knowledge, e.kres)
	if d.AskModel {
		return nil
	}
	r := e.result(d)
	r.Knowledge = e.kres
	return &r
}

// noMatch notes a message the help center did not answer: its passages
// are not given to the model, and the question is recorded for kb gaps,
// in the background (the answer does not wait for the store), and not
// while the store is known to be out.
func (e *event) noMatch(q string, f *KBFacts, res *KBResult) {
	f.Passages, res.Passages = nil, nil
	res.Found = false
	b := e.b
	if b.gaps == nil || (b.guard != nil && b.guard.skipping()) {
		return
	}
	base, gap := res.Base, GapText(q)
	b.jobs.Add(1)
	go func() {
		defer b.jobs.Done()
		ctx, cancel := context.WithTimeout(context.Background(), writeTime)
		defer cancel()
		if err := b.gaps.RecordGap(ctx, base, gap); err != nil {
			b.log.Warn("unanswered question not recorded", zap.String("base", base), zap.Error(err))
		}
	}()
}

// GapText is a question as kb gaps counts it: lower case, one space
// between words, no closing punctuation, at most 200 characters.
func GapText(q string) string {
	q = strings.ToLower(strings.Join(strings.Fields(q), " "))
	return kommbridge.Clip(strings.TrimRight(q, "?!. "), 200)
}

// promptKnowledge is the passages as the prompt gives them to the model.
func promptKnowledge(f *KBFacts) *prompt.Knowledge {
	if f == nil {
		return nil
	}
	k := &prompt.Knowledge{}
	for i, p := range f.Passages {
		k.Passages = append(k.Passages, prompt.Passage{N: i + 1, Title: p.Title, Heading: p.Heading, Text: p.Text})
	}
	return k
}
