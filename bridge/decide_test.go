package bridge

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/prompt"
)

// profile is a bot as compiled from the defaults, for decide's table.
func profile(t *testing.T, tweak func(*Profile)) *Profile {
	t.Helper()
	tpl := func(s string) *prompt.Template {
		p, err := prompt.ParseTemplate("t", s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := &Profile{
		ID: "bot", Format: kommbridge.FormatJSONSchema,
		Welcome: tpl("Hi{{with .Context.name}} {{.}}{{end}}!"), WelcomeReplies: []string{"Track my order", "Returns"},
		HandoffText: tpl("Let me connect you with a teammate."), ErrorText: tpl("Sorry, I'm having trouble answering right now."),
		DefaultHandoff: "Let me connect you with a teammate.", DefaultError: "Sorry, I'm having trouble answering right now.",
		MaxSuggested: 3, MinConfidence: 0.5, HandoffOnErr: true, Cooldown: 10 * time.Minute,
		Teams:        map[string]string{"billing": "2841"},
		LimitMessage: "Slow down.", BusyMessage: "Busy now.", FilterMessage: "Put it another way?", TooLongMessage: "Too long for me.",
		phrases: [][]string{{"talk", "to", "a", "human"}},
	}
	if tweak != nil {
		tweak(p)
	}
	return p
}

func conf(v float64) *float64 { return &v }

var now = time.Unix(1_800_000_000, 0)

// A row's Input is built from these: the event's text and name, what the
// conversation knows, and what the model said.
type row struct {
	name  string
	tweak func(*Profile)
	ev    kommbridge.Event
	in    func(*Input) // facts and the model's outcome; nil: before the model

	// what the user sees and what is written
	texts       []string
	assigned    []bool // per message: carries KM_ASSIGN_TO
	outcome     string
	reason      string
	askModel    bool
	turns       int
	mark, reset bool
	team        string
	trim        bool
	keep        int
	offline     bool
	form        string // the form a message carries
	askFile     bool
	filesDone   bool   // a message hides the attach button again
	assignTo    string // whom the handoff assigns to
	lastTurn    string // the history's new assistant turn, when set
}

func asked(parsed prompt.Parsed) func(*Input) {
	return func(in *Input) { in.Asked, in.Reply, in.UserTurn = true, parsed, "user's words" }
}

func failedWith(err error) func(*Input) {
	return func(in *Input) { in.Asked, in.Err, in.UserTurn = true, err, "user's words" }
}

func TestDecide(t *testing.T) {
	msg := func(text string) kommbridge.Event {
		return kommbridge.Event{BotID: "bot", ConversationID: "c", Text: text}
	}
	recently := func(in *Input) { in.HandedOffAt = now.Add(-time.Minute) }
	longAgo := func(in *Input) { in.HandedOffAt = now.Add(-time.Hour) }
	both := func(fs ...func(*Input)) func(*Input) {
		return func(in *Input) {
			for _, f := range fs {
				f(in)
			}
		}
	}
	modelErr := func(kind error) error { return &llm.Error{Kind: kind, Err: errors.New("scripted")} }
	welcome := kommbridge.Event{BotID: "bot", ConversationID: "c", Name: kommbridge.EventWelcome, Context: map[string]string{"name": "Asha"}}
	button := kommbridge.Event{BotID: "bot", ConversationID: "c", Text: "Talk to human", TalkToHuman: true}
	handoffText, errorText := "Let me connect you with a teammate.", "Sorry, I'm having trouble answering right now."
	// now is Friday 08:00 UTC: closed for a team in from 09:00, open for
	// one in from 08:00.
	contact := &kommbridge.Form{Name: "contact", Fields: []kommbridge.FormField{{Name: "email", Label: "Email", Type: "text"}}, Submit: "Send"}
	closed := func(p *Profile) {
		p.Hours = mustHours(t, "UTC", map[string]string{"mon-fri": "09:00-17:00"})
		p.OfflineText = mustTemplate(t, "We're away; a teammate will reply {{.Opens}}.")
		p.OfflineForm = contact
	}
	open := func(p *Profile) {
		p.Hours = mustHours(t, "UTC", map[string]string{"mon-fri": "08:00-17:00"})
		p.OfflineText = mustTemplate(t, "We're away.")
		p.HandoffForm = contact
	}
	withForms := func(p *Profile) { p.Forms = map[string]*kommbridge.Form{"contact": contact}; p.AskFile = true }
	// A bot with a help center; the facts are what a search found.
	noMatchText := "I couldn't find that in our help center."
	kbBot := func(tweak func(*knowledge)) func(*Profile) {
		return func(p *Profile) {
			p.Knowledge = &knowledge{Base: "help", TopK: 5, MinAuto: true, NoMatch: noMatchText, CiteButtons: true, HumanButton: "Talk to a person"}
			if tweak != nil {
				tweak(p.Knowledge)
			}
		}
	}
	handingOff := func(k *knowledge) { k.NoMatchHandoff = true }
	found := func(f KBFacts) func(*Input) {
		return func(in *Input) { in.Knowledge, in.UserTurn = &f, "user's words" }
	}
	calibrated := func(best float64) KBFacts { return KBFacts{Best: best, Floor: 0.25, Calibrated: true} }

	tests := []row{
		// Before the model.
		{name: "welcome resets the conversation", ev: welcome, texts: []string{"Hi Asha!"}, assigned: []bool{false}, outcome: kommbridge.OutcomeWelcome, turns: 1, reset: true},
		{name: "welcome with an empty text", ev: welcome, tweak: func(p *Profile) { p.Welcome = nil }, texts: []string{}, outcome: kommbridge.OutcomeWelcome, reset: true},
		{name: "the button hands off", ev: button, texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffButton, turns: 2, mark: true},
		{name: "the button inside the cooldown still assigns (it re-arms the widget's button)", ev: button, in: recently, texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffButton, turns: 2, mark: true},
		{name: "a phrase inside the cooldown still assigns", ev: msg("talk to a human!"), in: recently, texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffUserRequest, turns: 2, mark: true},
		{name: "a handoff phrase", ev: msg("Can I TALK to a human, please?"), texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffUserRequest, turns: 2, mark: true},
		{name: "a phrase's words apart are no phrase", ev: msg("talk about a human resources question"), askModel: true},
		{name: "a phrase matches without case or accents", ev: msg("Quiero un AGÉNTE humano"), tweak: func(p *Profile) { p.phrases = [][]string{words("agente humano")} },
			texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffUserRequest, turns: 2, mark: true},
		{name: "a phrase inside a word is no phrase", ev: msg("are you a realperson"), tweak: func(p *Profile) { p.phrases = [][]string{words("real person")} }, askModel: true},
		{name: "an empty message", ev: msg("  "), texts: []string{}, outcome: kommbridge.OutcomeIgnored},
		{name: "attachments alone go to the model", ev: kommbridge.Event{BotID: "bot", Attachments: []kommbridge.Attachment{{Type: "image/png"}}}, askModel: true},
		{name: "silent after a handoff", ev: msg("hello?"), in: longAgo, tweak: func(p *Profile) { p.SilentAfter = true }, texts: []string{}, outcome: kommbridge.OutcomeSilent},
		{name: "answer after a handoff", ev: msg("hello?"), in: longAgo, askModel: true},
		{name: "over a limit", ev: msg("hi"), in: func(in *Input) { in.Limited = true }, texts: []string{"Slow down."}, assigned: []bool{false}, outcome: kommbridge.OutcomeLimited},
		{name: "an ordinary message asks the model", ev: msg("hi"), askModel: true},
		// The help center, before the model.
		{name: "the help center matches: the model is asked", ev: msg("refund?"), tweak: kbBot(nil), in: found(calibrated(0.3)), askModel: true},
		{name: "nothing matches: the no-match message with its button", ev: msg("bikes?"), tweak: kbBot(nil), in: found(calibrated(0.2)),
			texts: []string{noMatchText}, assigned: []bool{false}, outcome: kommbridge.OutcomeNotInKB, turns: 2},
		{name: "nothing matches, on_no_match: handoff", ev: msg("bikes?"), tweak: kbBot(handingOff), in: found(calibrated(0.2)),
			texts: []string{noMatchText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffNotInKB, turns: 2, mark: true},
		{name: "nothing matches, on_no_match: handoff, inside an earlier handoff's cooldown", ev: msg("bikes?"), tweak: kbBot(handingOff),
			in: both(found(calibrated(0.2)), recently), texts: []string{noMatchText}, assigned: []bool{false}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffNotInKB, turns: 2},
		{name: "nothing matches out of hours: the offline message says when", ev: msg("bikes?"), tweak: func(p *Profile) { kbBot(handingOff)(p); closed(p) },
			in: found(calibrated(0.2)), texts: []string{"We're away; a teammate will reply today at 09:00 UTC."}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff,
			reason: kommbridge.HandoffNotInKB, turns: 2, mark: true, offline: true, form: "contact"},
		{name: "nothing matches, on_no_match: answer: the model answers without passages", ev: msg("bikes?"), tweak: kbBot(func(k *knowledge) { k.NoMatchAnswer = true }),
			in: found(calibrated(0.2)), askModel: true},
		{name: "auto before calibration: a question related to a passage matches", ev: msg("refund?"), tweak: kbBot(nil), in: found(KBFacts{Best: 0.05}), askModel: true},
		{name: "auto before calibration: a question unrelated to every passage does not", ev: msg("ceo?"), tweak: kbBot(nil), in: found(KBFacts{Best: 0.05, Unrelated: true}),
			texts: []string{noMatchText}, assigned: []bool{false}, outcome: kommbridge.OutcomeNotInKB, turns: 2},
		{name: "a min_score of its own wins over the calibrated floor", ev: msg("refund?"), tweak: kbBot(func(k *knowledge) { k.MinAuto, k.Min = false, 0.5 }),
			in: found(calibrated(0.4)), texts: []string{noMatchText}, assigned: []bool{false}, outcome: kommbridge.OutcomeNotInKB, turns: 2},
		{name: "a failed search is no judgement: the model answers", ev: msg("refund?"), tweak: kbBot(handingOff), in: found(KBFacts{Unrelated: true, Err: errors.New("index gone")}), askModel: true},
		{name: "asking for a person wins over the help center", ev: msg("talk to a human"), tweak: kbBot(nil), in: found(calibrated(0.1)),
			texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffUserRequest, turns: 2, mark: true},
		{name: "the no-match button's label typed (channels send no metadata) hands off", ev: msg("talk to a PERSON "), tweak: kbBot(nil),
			texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffUserRequest, turns: 2, mark: true},

		// The model's answer.
		{name: "an answer", ev: msg("hi"), in: asked(prompt.Parsed{Text: "Hello.", Confidence: conf(0.9), Suggested: []string{"A", "A", "B"}}),
			texts: []string{"Hello."}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2},
		{name: "no confidence is no signal", ev: msg("hi"), in: asked(prompt.Parsed{Text: "Hello."}), texts: []string{"Hello."}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2},
		{name: "the model hands off", ev: msg("refund!"), in: asked(prompt.Parsed{Text: "A teammate will help.", Handoff: true, HandoffReason: "refund", Team: "billing"}),
			texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffModel, turns: 2, mark: true, team: "2841"},
		{name: "an unknown team goes to routing", ev: msg("x"), in: asked(prompt.Parsed{Handoff: true, Team: "legal"}),
			texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffModel, turns: 2, mark: true},
		{name: "include_reply shows the model's words first", ev: msg("x"), tweak: func(p *Profile) { p.IncludeReply = true }, in: asked(prompt.Parsed{Text: "I'll get someone.", Handoff: true}),
			texts: []string{"I'll get someone.", handoffText}, assigned: []bool{false, true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffModel, turns: 2, mark: true},
		{name: "low self-reported confidence", ev: msg("x"), in: asked(prompt.Parsed{Text: "Maybe?", Confidence: conf(0.2)}),
			texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffLowConfidence, turns: 2, mark: true},
		{name: "include_reply does not show an unreliable answer", ev: msg("x"), tweak: func(p *Profile) { p.IncludeReply = true }, in: asked(prompt.Parsed{Text: "Maybe?", Confidence: conf(0.2)}),
			texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffLowConfidence, turns: 2, mark: true},
		{name: "low token confidence", ev: msg("x"), tweak: func(p *Profile) { p.MinTokenConfidence = 0.8 },
			in:    both(asked(prompt.Parsed{Text: "Maybe."}), func(in *Input) { in.Tokens = []llm.TokenProb{{Prob: 0.5}, {Prob: 0.6}} }),
			texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffLowConfidence, turns: 2, mark: true},
		{name: "token confidence without logprobs is no signal", ev: msg("x"), tweak: func(p *Profile) { p.MinTokenConfidence = 0.8 }, in: asked(prompt.Parsed{Text: "Sure."}),
			texts: []string{"Sure."}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2},
		{name: "a model handoff inside the cooldown", ev: msg("x"), in: both(asked(prompt.Parsed{Handoff: true}), recently),
			texts: []string{handoffText}, assigned: []bool{false}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffModel, turns: 2},
		{name: "nothing usable said", ev: msg("x"), in: asked(prompt.Parsed{Violation: prompt.ViolationEmpty}),
			texts: []string{errorText, handoffText}, assigned: []bool{false, true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffError, turns: 1, mark: true},

		{name: "solved and confirmed, resolve: auto", ev: msg("it works, thanks"), tweak: func(p *Profile) { p.ResolveAuto = true }, in: asked(prompt.Parsed{Text: "Glad it works!", Resolved: true, Suggested: []string{"More"}}),
			texts: []string{"Glad it works!"}, assigned: []bool{false}, outcome: kommbridge.OutcomeResolved, turns: 2},
		{name: "solved, resolve: never", ev: msg("it works, thanks"), in: asked(prompt.Parsed{Text: "Glad it works!", Resolved: true}),
			texts: []string{"Glad it works!"}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2},
		{name: "a refusal is the bot's words", ev: msg("x"), in: asked(prompt.Parsed{Text: "I can't help with that.", Refusal: true}),
			texts: []string{"I can't help with that."}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2},
		{name: "a refusal, handed off", ev: msg("x"), tweak: func(p *Profile) { p.HandoffOnRefusal = true }, in: asked(prompt.Parsed{Text: "I can't help with that.", Refusal: true}),
			texts: []string{"I can't help with that.", handoffText}, assigned: []bool{false, true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffRefusal, turns: 2, mark: true},
		{name: "a filtered answer", ev: msg("x"), in: asked(prompt.Parsed{Filtered: true, Text: "partial"}),
			texts: []string{"Put it another way?"}, assigned: []bool{false}, outcome: kommbridge.OutcomeFiltered},
		{name: "a filtered prompt", ev: msg("x"), in: failedWith(modelErr(llm.ErrFiltered)),
			texts: []string{"Put it another way?"}, assigned: []bool{false}, outcome: kommbridge.OutcomeFiltered},
		{name: "a filtered prompt, handed off", ev: msg("x"), tweak: func(p *Profile) { p.HandoffOnFilter = true }, in: failedWith(modelErr(llm.ErrFiltered)),
			texts: []string{"Put it another way?", handoffText}, assigned: []bool{false, true}, outcome: kommbridge.OutcomeFiltered, reason: kommbridge.HandoffContentFilter, mark: true},
		{name: "over the context even shortened", ev: msg("x"), in: failedWith(modelErr(llm.ErrContextOverflow)),
			texts: []string{"Too long for me."}, assigned: []bool{false}, outcome: kommbridge.OutcomeTooLong, trim: true},
		{name: "answered once the history was shortened", ev: msg("x"), in: both(asked(prompt.Parsed{Text: "Fits now."}), func(in *Input) { k := 4; in.Kept = &k }),
			texts: []string{"Fits now."}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2, trim: true, keep: 4},

		// Opening hours, forms, files.
		{name: "out of hours a handoff still assigns, and says when", ev: msg("x"), tweak: closed, in: asked(prompt.Parsed{Handoff: true}),
			texts: []string{"We're away; a teammate will reply today at 09:00 UTC."}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffModel, turns: 2, mark: true, offline: true, form: "contact"},
		{name: "out of hours the button still assigns", ev: button, tweak: closed,
			texts: []string{"We're away; a teammate will reply today at 09:00 UTC."}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffButton, turns: 2, mark: true, offline: true, form: "contact"},
		{name: "in hours, the handoff form", ev: button, tweak: open,
			texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffButton, turns: 2, mark: true, form: "contact"},
		{name: "out of hours an answer is an answer", ev: msg("x"), tweak: closed, in: asked(prompt.Parsed{Text: "Hello."}),
			texts: []string{"Hello."}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2},
		{name: "the model asks for a form and a file", ev: msg("x"), tweak: withForms, in: asked(prompt.Parsed{Text: "Your email?", Form: "contact", AskFile: true}),
			texts: []string{"Your email?"}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2, form: "contact", askFile: true},
		{name: "an unknown form and a file the bot does not allow", ev: msg("x"), in: asked(prompt.Parsed{Text: "Your email?", Form: "survey", AskFile: true}),
			texts: []string{"Your email?"}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2},
		{name: "the file asked for came: the attach button goes", ev: kommbridge.Event{BotID: "bot", Attachments: []kommbridge.Attachment{{Type: "image/png"}}}, tweak: withForms,
			in: asked(prompt.Parsed{Text: "Thanks, I see it."}), texts: []string{"Thanks, I see it."}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2, filesDone: true},
		{name: "a file came and the model asks for another", ev: kommbridge.Event{BotID: "bot", Attachments: []kommbridge.Attachment{{Type: "image/png"}}}, tweak: withForms,
			in: asked(prompt.Parsed{Text: "And the back?", AskFile: true}), texts: []string{"And the back?"}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2, askFile: true},
		{name: "a form with a required field left empty is asked for again", ev: msg("Send"), tweak: withForms,
			in:    func(in *Input) { in.Form, in.FormMissing = contact, []string{"Please choose Topic."} },
			texts: []string{"Please choose Topic."}, assigned: []bool{false}, outcome: kommbridge.OutcomeFormIncomplete, form: "contact"},
		{name: "assign_to a bot: the button goes to people by the routing rules", ev: button, tweak: func(p *Profile) { p.AssignTo, p.AssignToBot = "triage-bot", true },
			texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffButton, turns: 2, mark: true},
		{name: "assign_to a bot: the model's handoff goes to the bot", ev: msg("x"), tweak: func(p *Profile) { p.AssignTo, p.AssignToBot = "triage-bot", true },
			in: asked(prompt.Parsed{Handoff: true}), texts: []string{handoffText}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffModel, turns: 2, mark: true, assignTo: "triage-bot"},

		// Channels that show no cards, lists or forms: numbered text, kept
		// in history.
		{name: "cards on WhatsApp are numbered text", ev: msg("plans?"), tweak: func(p *Profile) {
			p.Channel = kommbridge.ChannelWhatsApp
			p.RichKinds = map[string]bool{prompt.RichCards: true}
		},
			in:    asked(prompt.Parsed{Text: "Our plans:", Cards: []kommbridge.Card{{Title: "Pro", Subtitle: "$10", Buttons: []kommbridge.Button{{Name: "Buy", URL: "https://acme.example/pro"}, {Name: "More", Reply: "More about Pro"}}}, {Title: "Team"}}}),
			texts: []string{"Our plans:\n\n1. Pro: $10\n   Buy: https://acme.example/pro\n2. Team"}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2,
			lastTurn: "Our plans:\n\n1. Pro: $10\n   Buy: https://acme.example/pro\n2. Team"},
		{name: "a list on Messenger is numbered text", ev: msg("topic?"), tweak: func(p *Profile) {
			p.Channel = kommbridge.ChannelMessenger
			p.RichKinds = map[string]bool{prompt.RichLists: true}
		},
			in:    asked(prompt.Parsed{Text: "Pick one.", List: &kommbridge.List{Header: "Topics", Items: []kommbridge.ListItem{{Title: "Billing", Description: "Invoices"}, {Title: "Returns"}}}}),
			texts: []string{"Pick one.\n\nTopics\n1. Billing: Invoices\n2. Returns"}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2},
		{name: "a list on WhatsApp stays a list", ev: msg("topic?"), tweak: func(p *Profile) {
			p.Channel = kommbridge.ChannelWhatsApp
			p.RichKinds = map[string]bool{prompt.RichLists: true}
		},
			in:    asked(prompt.Parsed{Text: "Pick one.", List: &kommbridge.List{Items: []kommbridge.ListItem{{Title: "Billing"}}}}),
			texts: []string{"Pick one."}, assigned: []bool{false}, outcome: kommbridge.OutcomeAnswered, turns: 2, lastTurn: "Pick one."},
		{name: "a handoff form on WhatsApp is the fields to reply with", ev: button, tweak: func(p *Profile) { open(p); p.Channel = kommbridge.ChannelWhatsApp },
			texts: []string{handoffText + "\n\nPlease reply with:\n1. Email"}, assigned: []bool{true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffButton, turns: 2, mark: true},

		// Failures.
		{name: "the model failed", ev: msg("x"), in: failedWith(modelErr(llm.ErrUnavailable)),
			texts: []string{errorText, handoffText}, assigned: []bool{false, true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffError, turns: 1, mark: true},
		{name: "the model was too slow", ev: msg("x"), in: failedWith(modelErr(llm.ErrTimeout)),
			texts: []string{errorText, handoffText}, assigned: []bool{false, true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffTimeout, turns: 1, mark: true},
		{name: "on_error: message", ev: msg("x"), tweak: func(p *Profile) { p.HandoffOnErr = false }, in: failedWith(modelErr(llm.ErrMalformed)),
			texts: []string{errorText}, assigned: []bool{false}, outcome: kommbridge.OutcomeError, turns: 1},
		{name: "every model slot taken", ev: msg("x"), in: failedWith(modelErr(llm.ErrBusy)), texts: []string{"Busy now."}, assigned: []bool{false}, outcome: kommbridge.OutcomeBusy},
		{name: "no time left to call", ev: msg("x"), in: failedWith(modelErr(llm.ErrNoTime)), texts: []string{"Busy now."}, assigned: []bool{false}, outcome: kommbridge.OutcomeBusy},
		{name: "waiting for the previous message", ev: msg("x"), in: func(in *Input) { in.Err = errWaited }, texts: []string{"Busy now."}, assigned: []bool{false}, outcome: kommbridge.OutcomeBusy},
		{name: "the store failed (on_outage: error)", ev: msg("x"), in: func(in *Input) { in.Err = errors.New("store: refused") },
			texts: []string{errorText, handoffText}, assigned: []bool{false, true}, outcome: kommbridge.OutcomeHandoff, reason: kommbridge.HandoffError, mark: true},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.outcome], seen["reason "+tt.reason] = true, true
		t.Run(tt.name, func(t *testing.T) {
			p := profile(t, tt.tweak)
			ev := tt.ev
			in := Input{Event: &ev, Now: now}
			if tt.in != nil {
				tt.in(&in)
			}
			d := decide(p, in)
			if d.AskModel != tt.askModel {
				t.Fatalf("ask the model: %v, want %v", d.AskModel, tt.askModel)
			}
			if tt.askModel {
				return
			}
			var texts []string
			var assigned []bool
			team, form, askFile, filesDone, assignTo := "", "", false, false, ""
			for _, m := range d.Messages {
				texts = append(texts, m.Text)
				assigned = append(assigned, m.Handoff != nil)
				if m.Handoff != nil {
					team, assignTo = m.Handoff.Team, m.Handoff.AssignTo
				}
				if m.Form != nil {
					form = m.Form.Name
				}
				askFile = askFile || m.AskFile
				filesDone = filesDone || m.FilesDone
			}
			if tt.lastTurn != "" && (len(d.Turns) == 0 || d.Turns[len(d.Turns)-1].Text != tt.lastTurn) {
				t.Errorf("turns %q, want the last %q", d.Turns, tt.lastTurn)
			}
			if texts == nil {
				texts = []string{}
			}
			got := []any{texts, assigned, d.Outcome, d.HandoffReason, len(d.Turns), d.MarkHandoff, d.Reset, team, d.Trim, d.Keep, d.Offline, form, askFile, filesDone, assignTo}
			want := []any{tt.texts, tt.assigned, tt.outcome, tt.reason, tt.turns, tt.mark, tt.reset, tt.team, tt.trim, tt.keep, tt.offline, tt.form, tt.askFile, tt.filesDone, tt.assignTo}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("[texts assigned outcome reason turns mark reset team trim keep offline form askFile filesDone assignTo] (-want +got):\n%s", diff)
			}
		})
	}
	// Every handoff reason and every outcome decide gives has a row.
	for _, want := range []string{"reason " + kommbridge.HandoffModel, "reason " + kommbridge.HandoffLowConfidence, "reason " + kommbridge.HandoffUserRequest,
		"reason " + kommbridge.HandoffButton, "reason " + kommbridge.HandoffError, "reason " + kommbridge.HandoffTimeout,
		"reason " + kommbridge.HandoffRefusal, "reason " + kommbridge.HandoffContentFilter, "reason " + kommbridge.HandoffNotInKB,
		kommbridge.OutcomeFiltered, kommbridge.OutcomeTooLong, kommbridge.OutcomeNotInKB,
		kommbridge.OutcomeAnswered, kommbridge.OutcomeWelcome, kommbridge.OutcomeHandoff, kommbridge.OutcomeError,
		kommbridge.OutcomeLimited, kommbridge.OutcomeIgnored, kommbridge.OutcomeSilent, kommbridge.OutcomeBusy, kommbridge.OutcomeResolved,
		kommbridge.OutcomeFormIncomplete} {
		if !seen[want] {
			t.Errorf("no row for %s", want)
		}
	}
}

// Link buttons are named by the link's text, or by host and last segment,
// in the order the links appear; a link the widget must not open is none.
func TestLinks(t *testing.T) {
	text := "See https://acme.example/faq/shipping?x=1 first, then [our returns page](https://acme.example/help/returns) or https://acme.example/help/returns, " +
		"not [this](https://acme.example/&quot;onclick=x). Also https://acme.example."
	got := links(text)
	want := []kommbridge.Link{
		{Name: "acme.example/shipping", URL: "https://acme.example/faq/shipping?x=1"},
		{Name: "our returns page", URL: "https://acme.example/help/returns"},
		{Name: "acme.example", URL: "https://acme.example"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func mustHours(t *testing.T, zone string, weekly map[string]string, holidays ...string) *hours {
	t.Helper()
	h, errs := parseHours(&config.Hours{TimeZone: zone, Weekly: weekly, Holidays: holidays})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return h
}

func mustTemplate(t *testing.T, s string) *prompt.Template {
	t.Helper()
	tpl, err := prompt.ParseTemplate("t", s)
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}
