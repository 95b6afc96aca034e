package eval

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/adapter"
	"github.com/kommbridge/kommbridge/bridge"
)

// Pipeline answers one webhook event, as the webhook does:
// *bridge.Bridge.
type Pipeline interface {
	Handle(ctx context.Context, ev kommbridge.Event) (bridge.Result, error)
}

// Options shape a run.
type Options struct {
	// Repeat runs every case this many times (models are not
	// deterministic); at least 1.
	Repeat int
	// Concurrency is how many conversations run at once; at least 1.
	Concurrency int
	// Bot, when set, is the botId every case talks to.
	Bot string
	// Judge grades the judge expectations; nil fails them ("no judge").
	Judge Judge
	// FileURL turns a local attachment's path into the URL the pipeline
	// fetches it from; nil refuses local files.
	FileURL func(path string) (string, error)
	// Progress, when set, is told after every conversation.
	Progress func(done, total int)
	// DefaultBot is the botId for cases that name none (the first bot of
	// the configuration).
	DefaultBot string
}

// Run is one conversation of a case: its turns, in order.
type Run struct {
	Suite *Suite
	Case  *Case
	N     int // 1-based repeat number
	Turns []TurnResult
}

// Passed reports whether every turn met its expectations.
func (r *Run) Passed() bool {
	for _, t := range r.Turns {
		if len(t.Failures) > 0 {
			return false
		}
	}
	return true
}

// TurnResult is what the user did and saw in one turn.
type TurnResult struct {
	Input    string            `json:"input"`
	Messages []adapter.Message `json:"messages"`
	// Seen, from the messages: the text, the buttons, the assignment.
	Text     string   `json:"text"`
	Buttons  []string `json:"buttons,omitempty"`
	Handoff  bool     `json:"handoff"`
	Team     string   `json:"team,omitempty"`
	Resolved bool     `json:"resolved,omitempty"`
	// What kommbridge rendered beyond text and buttons: the form shown,
	// whether the attach button was opened, cards, a list, images, link
	// buttons.
	Form   *kommbridge.Form   `json:"form,omitempty"`
	Attach bool               `json:"attach,omitempty"`
	Cards  []kommbridge.Card  `json:"cards,omitempty"`
	List   *kommbridge.List   `json:"list,omitempty"`
	Images []kommbridge.Image `json:"images,omitempty"`
	Links  []kommbridge.Link  `json:"links,omitempty"`
	// Calls are the action calls the model made (or kommbridge refused).
	Calls []Call `json:"calls,omitempty"`
	// Promise is what kommbridge did with a reply that promised a person
	// without handing off; "" when none did.
	Promise string `json:"false_promise,omitempty"`
	// Knowledge: kb is found, not_found or failed when the bot's help
	// center was asked; Cited are the articles the answer cites.
	KB    string      `json:"kb,omitempty"`
	Cited []CitedPage `json:"cited,omitempty"`
	// From the pipeline.
	Outcome   string        `json:"outcome"`
	Reason    string        `json:"reason,omitempty"`
	Latency   time.Duration `json:"latency_ns"`
	TokensIn  int           `json:"tokens_in"`
	TokensOut int           `json:"tokens_out"`
	Model     string        `json:"model,omitempty"`
	// Error is the model's or the store's failure behind the answer, if
	// any (the error policy answered).
	Error string `json:"error,omitempty"`
	// Expected is the turn's handoff expectation, when it has one.
	Expected *bool     `json:"expected_handoff,omitempty"`
	Failures []Failure `json:"failures,omitempty"`
	// Judge is the judge's reason, passed or not.
	Judge       string `json:"judge,omitempty"`
	judgeTokens int
}

// Call is one action call of a turn: its arguments, and what it came to
// (action.Kind*) with the status of its answer.
type Call struct {
	Action string         `json:"action"`
	Args   map[string]any `json:"args,omitempty"`
	Kind   string         `json:"kind"`
	Status int            `json:"status,omitempty"`
}

// ran reports whether the call reached the API (or its stub).
func (c Call) ran() bool {
	return c.Status != 0 || c.Kind == "timeout" || c.Kind == "unreachable" || c.Kind == "bad_answer"
}

// StubActions answers action calls from the suites' stubs, in place of
// the business's APIs: the first stub of the action whose args the call
// holds; a call no stub answers gets HTTP 501, so that eval never reaches
// a real API.
func StubActions(suites []*Suite) func(name string, args map[string]any) (int, []byte, bool) {
	return func(name string, args map[string]any) (int, []byte, bool) {
		for _, s := range suites {
			for _, st := range s.Actions[name] {
				if holds(args, st.Args) {
					body, _ := json.Marshal(st.Body)
					return cmp.Or(st.Status, http.StatusOK), body, true
				}
			}
		}
		return http.StatusNotImplemented, []byte(`{"error":"no stub for this action in the eval suites"}`), true
	}
}

// holds reports whether args hold every one of want (compared as text,
// so that 1234 and "1234" are one).
func holds(args, want map[string]any) bool {
	for k, v := range want {
		if fmt.Sprint(args[k]) != fmt.Sprint(v) {
			return false
		}
	}
	return true
}

// CitedPage is an article an answer cites.
type CitedPage struct {
	Title string `json:"title"`
	URL   string `json:"url,omitempty"`
}

// citedPages are the articles r's answer cites.
func citedPages(r bridge.Result) []CitedPage {
	if r.Knowledge == nil {
		return nil
	}
	var out []CitedPage
	for _, c := range r.Knowledge.Cited {
		out = append(out, CitedPage{Title: c.Title, URL: c.URL})
	}
	return out
}

// knowledge notes what the bot's help center did.
func (tr *TurnResult) knowledge(k *bridge.KBResult, cited []CitedPage) {
	if k == nil {
		return
	}
	tr.KB = k.Result()
	tr.Cited = cited
}

// Failure is one unmet expectation.
type Failure struct {
	Check  string `json:"check"`
	Reason string `json:"reason"`
}

// RunSuites runs every case of suites, opts.Repeat times each, at most
// opts.Concurrency conversations at once. Runs come back in suite, case
// and repeat order. Once ctx is done no further run starts (those under
// way finish: the pipeline answers within its budget whatever the
// caller), and only the runs made come back.
func RunSuites(ctx context.Context, p Pipeline, suites []*Suite, opts Options) []*Run {
	opts.Repeat, opts.Concurrency = max(opts.Repeat, 1), max(opts.Concurrency, 1)
	var runs []*Run
	for _, s := range suites {
		for i := range s.Cases {
			for n := 1; n <= opts.Repeat; n++ {
				runs = append(runs, &Run{Suite: s, Case: &s.Cases[i], N: n})
			}
		}
	}
	nonce := strconv.FormatInt(time.Now().UnixNano(), 36)
	sem := make(chan struct{}, opts.Concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	done := 0
	started := 0
	for i, r := range runs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		started++
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			runOne(ctx, p, r, fmt.Sprintf("eval-%s-%d", nonce, i), opts)
			if opts.Progress != nil {
				mu.Lock()
				done++
				opts.Progress(done, len(runs))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return runs[:started]
}

func runOne(ctx context.Context, p Pipeline, r *Run, conv string, opts Options) {
	bot := cmp.Or(opts.Bot, r.Case.Bot, r.Suite.Bot, opts.DefaultBot, "eval-bot")
	chat := map[string]string{}
	for k, v := range r.Suite.Context {
		chat[k] = v
	}
	for k, v := range r.Case.Context {
		chat[k] = v
	}
	var history []Exchange
	confirm := "" // the last confirmation shown, which press presses
	for i := range r.Case.Turns {
		t := &r.Case.Turns[i]
		for k, v := range t.Context {
			chat[k] = v
		}
		tr := TurnResult{Input: t.describe(), Expected: t.Expect.Handoff}
		body, err := t.webhook(bot, conv, fmt.Sprintf("%s-%d", conv, i+1), chat, r.Suite, opts.FileURL, confirm)
		if err != nil {
			tr.Failures = []Failure{{Check: "input", Reason: err.Error()}}
			r.Turns = append(r.Turns, tr)
			continue
		}
		start := time.Now()
		ev, err := adapter.DecodeEvent(body, start)
		var res bridge.Result
		if err == nil {
			res, err = p.Handle(ctx, ev)
		}
		tr.Latency = time.Since(start)
		if err != nil {
			tr.Failures = []Failure{{Check: "pipeline", Reason: err.Error()}}
			r.Turns = append(r.Turns, tr)
			continue
		}
		tr.Messages = adapter.Render(res.Reply)
		tr.see()
		tr.rich(res.Reply)
		tr.knowledge(res.Knowledge, citedPages(res))
		for _, m := range res.Messages {
			if m.Confirm != nil {
				confirm = m.Confirm.Token
			}
		}
		tr.Promise = res.Promise
		for _, c := range res.Actions {
			var args map[string]any
			json.Unmarshal([]byte(c.Args), &args)
			tr.Calls = append(tr.Calls, Call{Action: c.Action, Args: args, Kind: c.Kind, Status: c.Status})
		}
		tr.Outcome, tr.Reason, tr.Model = res.Outcome, res.HandoffReason, res.Model
		tr.TokensIn, tr.TokensOut = res.Usage.PromptTokens, res.Usage.CompletionTokens
		if res.Err != nil {
			tr.Error = res.Err.Error()
		}
		tr.Failures = check(&t.Expect, &tr)
		history = append(history, Exchange{User: tr.Input, Bot: tr.Text})
		if t.Expect.Judge != "" {
			tr.judge(ctx, opts.Judge, t.Expect.Judge, history)
		}
		r.Turns = append(r.Turns, tr)
	}
}

// describe is the turn as the report shows it.
func (t *Turn) describe() string {
	var parts []string
	switch {
	case t.Welcome:
		parts = append(parts, "[WELCOME]")
	case t.TalkToHuman:
		parts = append(parts, "[Talk to human]")
	case t.Event != "":
		parts = append(parts, "[event "+t.Event+"]")
	case t.Press != "":
		parts = append(parts, "[pressed "+t.Press+"]")
	}
	if t.User != "" {
		parts = append(parts, t.User)
	}
	for _, a := range t.Attachments {
		parts = append(parts, "[attachment "+path.Base(a)+"]")
	}
	if len(t.Form) > 0 {
		parts = append(parts, "[form submitted]")
	}
	return strings.Join(parts, " ")
}

// webhook is the JSON Kommunicate would post for the turn (written by
// adapter.EncodeEvent, the webhook's one writer).
func (t *Turn) webhook(bot, conv, key string, chat map[string]string, s *Suite, fileURL func(string) (string, error), confirm string) ([]byte, error) {
	ev := kommbridge.Event{BotID: bot, Key: key, UserID: "eval-user", ConversationID: conv, Text: t.User, Context: map[string]string{}}
	switch {
	case t.Press == "" || confirm == "" && t.Press == "yes":
		if t.Press != "" {
			return nil, errors.New("press: no confirmation was shown before this turn")
		}
	case t.Press == "yes":
		ev.Text, ev.Confirm, ev.Clicked = "Yes", confirm, "confirm"
	default:
		ev.Text, ev.Confirm, ev.Clicked = "No", kommbridge.ConfirmNo, "confirm"
	}
	for k, v := range chat {
		ev.Context[k] = v
	}
	switch {
	case t.Welcome:
		ev.Name = kommbridge.EventWelcome
	case t.TalkToHuman:
		ev.Text, ev.TalkToHuman = "Talk to human", true
	case t.Event != "":
		ev.Name = t.Event
	}
	for _, a := range t.Attachments {
		u := a
		if !IsURL(a) {
			if fileURL == nil {
				return nil, fmt.Errorf("attachment %s: local files are not served in this run", a)
			}
			var err error
			if u, err = fileURL(s.Resolve(a)); err != nil {
				return nil, err
			}
		}
		typ := mime.TypeByExtension(filepath.Ext(a))
		if typ == "" {
			typ = "application/octet-stream"
		}
		typ, _, _ = strings.Cut(typ, ";")
		ev.Attachments = append(ev.Attachments, kommbridge.Attachment{Type: typ, Name: path.Base(a), URL: u})
	}
	if len(t.Form) > 0 {
		ev.Form = t.Form
	}
	return adapter.EncodeEvent(ev), nil
}

// see reads what the user sees off the rendered messages: the text, the
// buttons' labels, the assignment and the resolve action.
func (tr *TurnResult) see() {
	var texts []string
	for _, m := range tr.Messages {
		if strings.TrimSpace(m.Message) != "" {
			texts = append(texts, m.Message)
		}
		if md := m.Metadata; md != nil && md.AssignTo != nil {
			tr.Handoff, tr.Team = true, md.AssignTeam
		}
		tr.Resolved = tr.Resolved || m.Resolves()
		tr.Buttons = append(tr.Buttons, m.Buttons()...)
	}
	tr.Text = strings.Join(texts, "\n")
}

// rich notes the parts of the reply beyond text and buttons, as
// kommbridge rendered them.
func (tr *TurnResult) rich(r kommbridge.Reply) {
	for _, m := range r.Messages {
		if m.Form != nil {
			tr.Form = m.Form
		}
		tr.Attach = tr.Attach || m.AskFile
		tr.Cards = append(tr.Cards, m.Cards...)
		if m.List != nil {
			tr.List = m.List
		}
		tr.Images = append(tr.Images, m.Images...)
		tr.Links = append(tr.Links, m.Links...)
	}
}

// Replies are the turn's buttons that are not a card's or a list's (those
// are drawn with their card or list): quick replies and link buttons.
func (tr TurnResult) Replies() []string {
	own := map[string]bool{}
	for _, c := range tr.Cards {
		for _, b := range c.Buttons {
			own[b.Name] = true
		}
	}
	if tr.List != nil {
		for _, it := range tr.List.Items {
			own[it.Title] = true
		}
	}
	var out []string
	for _, b := range tr.Buttons {
		if !own[b] {
			out = append(out, b)
		}
	}
	return out
}
