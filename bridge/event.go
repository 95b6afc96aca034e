package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/action"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/prompt"
)

// event is one event's work, made once when it begins (Handle, or a held
// answer's job): the configuration and bot it began with, the event and
// its conversation, and the context its store writes share. The steps of
// the pipeline are its methods; each reads the facts once, asks decide,
// and commits what decide said.
type event struct {
	b    *Bridge
	s    *settings
	p    *Profile
	ev   *kommbridge.Event
	conv string

	// writes is the context the event's store writes share (history,
	// handoff mark, dedupe record: they come one after the other at the
	// end), made at the first write with a moment of its own (writeTime)
	// and made again when less than half of that is left. end ends it.
	writes       context.Context
	cancelWrites context.CancelFunc

	// waited is how long the event waited for its conversation's lock.
	waited time.Duration
	// joined are the words of earlier messages of the conversation that
	// waited with this one and are answered with it, oldest first.
	joined []string
	// cut lists what of the message was cut to its bounds.
	cut []string
	// verified: the website vouches for the user (identity.secret); the
	// signature itself is taken out of the chat context.
	verified bool
	// kres is what the help center did for the event; run what its
	// actions did.
	kres *KBResult
	run  actionRun
	// confidence is the model's own confidence in its answer, for the
	// handoff note.
	confidence *float64
}

func (b *Bridge) newEvent(s *settings, p *Profile, ev *kommbridge.Event) *event {
	e := &event{b: b, s: s, p: p, ev: ev, conv: ev.Conversation()}
	if sig, ok := ev.Context[s.confirm.identityKey]; ok {
		e.verified = action.Verified(s.confirm.identitySecret, ev.UserID, sig)
		ctx := maps.Clone(ev.Context)
		delete(ctx, s.confirm.identityKey)
		ev.Context = ctx
	}
	e.mask()
	return e
}

// mask takes the kinds of personal data privacy.mask names out of the
// event's words, form values and chat context (copies: the caller's event
// is untouched), so that no model request, history or log of kommbridge's
// holds them. The user's message in Kommunicate stays as it was.
func (e *event) mask() {
	m, ev := e.s.masks, e.ev
	if m == (kommbridge.Masks{}) {
		return
	}
	// Written only when something changes: a held answer's job masks the
	// event again, already masked, while the webhook still reads it.
	if t := m.Mask(ev.Text); t != ev.Text {
		ev.Text = t
	}
	if f := masked(m, ev.Form); f != nil {
		ev.Form = f
	}
	if c := masked(m, ev.Context); c != nil {
		ev.Context = c
	}
}

// masked is a copy of values with m applied, nil when m changes none.
func masked(m kommbridge.Masks, values map[string]string) map[string]string {
	var out map[string]string
	for k, v := range values {
		if t := m.Mask(v); t != v {
			if out == nil {
				out = maps.Clone(values)
			}
			out[k] = t
		}
	}
	return out
}

// end releases what the event holds.
func (e *event) end() {
	if e.cancelWrites != nil {
		e.cancelWrites()
	}
}

// writeCtx is the context of a store write that happens even when the
// budget ran out: the event's shared one, with a moment of its own.
func (e *event) writeCtx(ctx context.Context) context.Context {
	if e.writes == nil || time.Until(deadline(e.writes)) < writeTime/2 {
		// The first write, or one long after an earlier read.
		e.end()
		e.writes, e.cancelWrites = context.WithTimeout(context.WithoutCancel(ctx), writeTime)
	}
	return e.writes
}

func deadline(ctx context.Context) time.Time {
	dl, _ := ctx.Deadline()
	return dl
}

// writeTime is how long an event's store writes may take, once begun.
const writeTime = 2 * time.Second

// deduped answers the event once per message key: a repeat gets the
// first answer.
func (e *event) deduped(ctx context.Context) Result {
	if e.ev.Key == "" {
		return e.handle(ctx)
	}
	dkey := e.ev.DedupeKey()
	if r := e.claim(ctx, dkey); r != nil {
		return *r
	}
	r := e.handle(ctx)
	e.finish(ctx, dkey, &r)
	return r
}

// claim claims the event's key; a key answered (or being answered) before
// gives that answer, a store failure the error policy's. nil: this event
// answers.
func (e *event) claim(ctx context.Context, dkey string) *Result {
	prev, claimed, err := e.b.store.Claim(ctx, dkey)
	switch {
	case err != nil:
		r := e.failed(ctx, storeFailure(ctx, err, "for the answer to the same message key"), false)
		return &r
	case !claimed:
		r := new(Result)
		if err := decodeReply(prev, &r.Reply); err != nil {
			*r = e.failed(ctx, err, false)
			return r
		}
		r.Outcome = kommbridge.OutcomeDuplicate
		return r
	}
	return nil
}

// finish keeps r as the key's answer, which outlives this request. A busy
// answer is not kept: a retry of the key deserves a fresh try.
func (e *event) finish(ctx context.Context, dkey string, r *Result) {
	wctx := e.writeCtx(ctx)
	if r.Outcome == kommbridge.OutcomeBusy {
		e.b.store.Release(wctx, dkey)
		return
	}
	if err := e.b.store.Finish(wctx, dkey, encodeReply(r.Reply)); err != nil {
		e.b.log.Warn("dedupe record not stored", zap.Error(err))
		e.b.store.Release(wctx, dkey)
	}
}

// handle decides what needs no model, else locks the conversation, asks
// the model and commits the answer.
func (e *event) handle(ctx context.Context) Result {
	if r := e.before(ctx); r != nil {
		return *r
	}
	lock, r := e.lock(ctx)
	if r != nil {
		return *r
	}
	defer lock.Unlock()
	res := e.answer(ctx)
	e.keepIfHeld(lock, &res)
	e.commit(ctx, &res)
	return res
}

// before decides what needs no model (and commits it), or answers through
// the async path; nil means: lock the conversation and ask the model.
func (e *event) before(ctx context.Context) *Result {
	in := e.facts(ctx)
	d := e.settle(ctx, in)
	if d.AskModel && e.overLimit(ctx) {
		in.Limited = true
		d = e.settle(ctx, in)
	}
	if !d.AskModel {
		r := e.result(d)
		e.commit(ctx, &r)
		return &r
	}
	if e.p.Async && e.b.deliver != nil {
		r := e.answerAsync(ctx)
		return &r
	}
	if !hasTime(ctx) {
		r := e.failed(ctx, fmt.Errorf("%w before the conversation could be locked", errWaited), false)
		return &r
	}
	return nil
}

// lock takes the conversation's lock, so that two messages of one
// conversation do not interleave their history. A plain text message
// queues itself first: messages that wait together are answered together,
// by one model call of the newest of them, and the others' webhooks get
// no message of their own (outcome joined). A non-nil Result is the
// event's answer without the lock.
func (e *event) lock(ctx context.Context) (kommbridge.Lock, *Result) {
	queued := e.joinable() && e.b.store.Queue(ctx, e.conv, e.ev.Key, e.ev.Text) == nil
	start := e.b.now()
	lock, err := e.b.store.Lock(ctx, e.conv)
	e.waited = e.b.now().Sub(start)
	if err != nil {
		r := e.failed(ctx, storeFailure(ctx, err, "for the conversation's previous message"), true)
		return nil, &r
	}
	if !queued {
		return lock, nil
	}
	texts, q, err := e.b.store.Dequeue(ctx, e.conv, e.ev.Key)
	switch {
	case err != nil:
		e.b.log.Warn("queue of waiting messages unreadable; answering this one alone", zap.String("conversation", e.conv), zap.Error(err))
	case q == kommbridge.Joined:
		lock.Unlock()
		return nil, &Result{Reply: reply(kommbridge.OutcomeJoined)}
	case q == kommbridge.Answer && len(texts) > 1:
		e.joined = texts[:len(texts)-1]
	}
	return lock, nil
}

// joinable reports whether the event may be answered together with other
// messages that wait for the conversation: a message of words alone.
func (e *event) joinable() bool {
	ev := e.ev
	return ev.Key != "" && ev.Name == "" && len(ev.Attachments) == 0 && len(ev.Form) == 0 && !ev.TalkToHuman && ev.Confirm == ""
}

// failed is the answer to a failure before the model was asked, committed
// when commit says so.
func (e *event) failed(ctx context.Context, err error, commit bool) Result {
	r := e.result(e.settle(ctx, Input{Event: e.ev, Now: e.b.now(), Err: err}))
	if commit {
		e.commit(ctx, &r)
	}
	return r
}

// facts reads what decide needs before the model: a form's values, the
// custom event's prompt in place of the text, and, for a bot silent after
// a handoff, the conversation's handoff mark (others read it only when
// they hand off; see settle).
func (e *event) facts(ctx context.Context) Input {
	ev, p := e.ev, e.p
	in := Input{Event: ev, Now: e.b.now()}
	if max := e.s.maxMessage; max > 0 && len(ev.Text) > max && utf8.RuneCountInString(ev.Text) > max {
		// A message this long would go again with every later request
		// of the conversation.
		ev.Text = kommbridge.Clip(ev.Text, max) + fmt.Sprintf("\n[cut: the message was longer than %d characters]", max)
		e.cut = append(e.cut, CutMessage)
	}
	if len(ev.Form) > 0 {
		in.Form, in.FormMissing = p.formFacts(ev)
	}
	if tpl, ok := p.Events[ev.Name]; ok && ev.Name != kommbridge.EventMedia && ev.Name != kommbridge.EventWelcome {
		t, err := tpl.Render(vars(ev, in.Now))
		if err != nil {
			in.Err = err
			return in
		}
		ev.Text = t
	}
	if ev.Name == kommbridge.EventWelcome || !p.SilentAfter {
		return in // a new conversation clears the mark; others need it only to hand off
	}
	at, err := e.b.store.HandoffAt(ctx, e.conv)
	if err != nil {
		in.Err = fmt.Errorf("store: %w", err)
	}
	in.HandedOffAt = at
	return in
}

// overLimit applies the rate limits to an event on its way to the model.
// A limiter that fails lets the event through.
func (e *event) overLimit(ctx context.Context) bool {
	b := e.b
	if b.limiter == nil || (b.guard != nil && b.guard.skipping()) {
		return false
	}
	ok, err := b.limiter.Allow(ctx, e.conv, e.ev.User())
	switch {
	case err != nil && b.guard != nil:
		b.guard.fail(err) // the store's outage, logged once
	case err != nil:
		b.log.Warn("limiter unavailable; letting the event through", zap.Error(err))
	}
	return err == nil && !ok
}

// minTime is the least of the budget worth starting on a conversation with.
const minTime = 50 * time.Millisecond

// hasTime reports whether ctx's deadline leaves time to work on an event.
func hasTime(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() == nil && (!ok || time.Until(dl) > minTime)
}

// keepIfHeld drops r's history writes when the conversation's lock was
// lost while the answer was made: another event may own the history now.
func (e *event) keepIfHeld(lock kommbridge.Lock, r *Result) {
	if lock.Lost() && len(r.fx.turns) > 0 {
		e.b.log.Warn("conversation lock lost while answering; this answer's turns are not written to history", zap.String("conversation", e.conv))
		r.fx.turns = nil
	}
}

// answer asks the model, with the conversation locked, and decides on its
// answer. The history and handoff writes it implies are left in the Result
// for commit.
func (e *event) answer(ctx context.Context) Result {
	if e.ev.Confirm != "" {
		return *e.confirmed(ctx)
	}
	history, err := e.b.store.History(ctx, e.conv)
	if err != nil {
		return e.failed(ctx, storeFailure(ctx, err, "reading the conversation"), false)
	}
	user, standIn, outcomes := e.userContent(ctx)
	in := &Input{Event: e.ev, Now: e.b.now(), UserTurn: standIn, Joined: e.joined}
	if e.p.Knowledge != nil {
		if r := e.consult(ctx, in, history); r != nil {
			return *r
		}
	}
	for _, t := range e.joined {
		history = append(history, kommbridge.Turn{Role: llm.RoleUser, Text: t})
	}
	req, err := e.request(in.Now, history, user, in.Knowledge)
	if err != nil {
		return e.failed(ctx, err, false)
	}
	start := e.b.now()
	resp, err := e.b.model.Complete(ctx, *req)
	if errors.Is(err, llm.ErrContextOverflow) && hasTime(ctx) {
		req, resp, err = e.shorter(ctx, in, history, user)
	}
	if err == nil && len(e.p.Actions) > 0 {
		err = e.act(ctx, req, &resp, in)
	}
	if errors.Is(err, llm.ErrTimeout) && e.waited > e.s.budget/2 {
		// The wait for the conversation's previous message took the time:
		// the model is fine, and nobody is handed off.
		err = fmt.Errorf("%w for the conversation's previous message (%v): %w", errWaited, e.waited.Round(time.Millisecond), err)
	}
	r := e.asked(ctx, in, &resp, err, start, outcomes)
	e.annotate(&r)
	return r
}

// annotate adds to r what the event's help center and actions did. (The
// pipeline's steps keep these on the event rather than in locals: a
// webhook waits for the model with answer's frame on its stack, which
// TestStackPerWaitingWebhook keeps small.)
func (e *event) annotate(r *Result) {
	r.Actions = e.run.calls
	if k := e.kres; k != nil {
		for _, p := range r.cited {
			k.Cited = append(k.Cited, Citation{ID: p.ID, Title: p.Title, URL: p.URL})
		}
		k.Dropped = r.droppedSources
		r.Knowledge = k
	}
}

// storeFailure names a failed store call: the budget spent waiting (a busy
// answer) when ctx ran out during it, the store's own fault otherwise.
func storeFailure(ctx context.Context, err error, while string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w %s: %v", errWaited, while, err)
	}
	return fmt.Errorf("store: %w", err)
}

// settle is decide, with the handoff mark read only when it matters: an
// assignment subject to the cooldown is checked against an earlier
// handoff. Most events never hand off, so they skip that read.
func (e *event) settle(ctx context.Context, in Input) Decision {
	d := decide(e.p, in)
	if !d.MarkHandoff || !d.Cooldown || !in.HandedOffAt.IsZero() {
		return d
	}
	// A moment of its own: the decision is made even when the budget ran
	// out waiting.
	at, err := e.b.store.HandoffAt(e.writeCtx(ctx), e.conv)
	if err != nil || at.IsZero() {
		return d // no earlier handoff (or none readable): assign
	}
	in.HandedOffAt = at
	return decide(e.p, in)
}

// request is the chat request for the bot's system prompt, the history
// and the user's message.
func (e *event) request(now time.Time, history []kommbridge.Turn, user []llm.Part, kf *KBFacts) (*llm.Request, error) {
	p := e.p
	system, err := p.System.Render(vars(e.ev, now))
	if err != nil {
		return nil, err
	}
	req := prompt.Build(prompt.Input{
		System:      system,
		Whole:       p.wholeSystem(system),
		Contract:    &p.contract,
		History:     history,
		User:        user,
		Model:       p.Model,
		Temperature: p.Temperature,
		MaxTokens:   p.MaxTokens,
		LogProbs:    p.MinTokenConfidence > 0,
		Knowledge:   promptKnowledge(kf),
	})
	req.Tools = append(req.Tools, e.s.actions.Tools(p.Actions)...)
	return &req, nil
}

// shorter asks again after a context overflow: with the older half of the
// history dropped (from a user turn on: some backends refuse a
// conversation that opens with the assistant) and long documents cut to
// half; the history kept for the conversation is trimmed the same way if
// that fits. The shorter request is returned for what follows (the
// action loop goes on from it).
func (e *event) shorter(ctx context.Context, in *Input, history []kommbridge.Turn, user []llm.Part) (*llm.Request, llm.Response, error) {
	keep := len(history) / 2
	for keep > 0 && history[len(history)-keep].Role != llm.RoleUser {
		keep--
	}
	e.b.log.Info("context overflow; asking again with less history", zap.String("bot", e.p.ID),
		zap.Int("history_turns", len(history)), zap.Int("kept", keep))
	req, err := e.request(in.Now, history[len(history)-keep:], prompt.Shorten(user), in.Knowledge)
	if err != nil {
		return nil, llm.Response{}, err
	}
	resp, err := e.b.model.Complete(ctx, *req)
	if err == nil {
		// The joined messages are not in the stored history yet.
		kept := max(keep-len(e.joined), 0)
		in.Kept = &kept
	}
	return req, resp, err
}

// asked decides on the model's answer (or failure) and notes what it took.
func (e *event) asked(ctx context.Context, in *Input, resp *llm.Response, err error, start time.Time, outcomes []string) Result {
	p := e.p
	in.Asked, in.Err, in.Tokens = true, err, resp.Tokens
	var violation string
	if err == nil {
		in.Reply = prompt.Parse(p.Format, *resp)
		e.confidence = in.Reply.Confidence
		if in.Knowledge != nil {
			in.Reply.SourceMarkers()
		}
		violation = in.Reply.Violation
	}
	r := e.result(e.settle(ctx, *in))
	r.ModelLatency, r.Model, r.Endpoint, r.Attempts, r.Usage = e.b.now().Sub(start), resp.Model, resp.Endpoint, resp.Attempts, resp.Usage
	var lerr *llm.Error
	if errors.As(err, &lerr) {
		r.Endpoint, r.Attempts, r.Model = lerr.Endpoint, lerr.Attempts, lerr.Model
	}
	r.Format, r.Violation, r.Attachments, r.FinishReason = p.Format, violation, outcomes, resp.FinishReason
	if resp.FinishReason == "length" {
		e.b.log.Warn("the answer was cut at the token limit; raise max_tokens", zap.String("bot", p.ID), zap.Int("max_tokens", p.MaxTokens))
	}
	return r
}

// result turns a decision into the Result handle returns, logging what
// the decision could only report.
func (e *event) result(d Decision) Result {
	log, id := e.b.log, e.p.ID
	if d.TemplateErr != nil {
		log.Error("template", zap.String("bot", id), zap.Error(d.TemplateErr))
	}
	if d.UnknownTeam != "" {
		log.Info("model chose an unknown team; ignored", zap.String("bot", id), zap.String("team", d.UnknownTeam))
	}
	if d.UnknownForm != "" {
		log.Info("model asked for an unknown form; ignored", zap.String("bot", id), zap.String("form", d.UnknownForm))
	}
	if len(d.RichDropped) > 0 {
		log.Info("rich answer parts left out", zap.String("bot", id), zap.Strings("dropped", d.RichDropped))
	}
	r := Result{Reply: d.Reply, ModelReason: d.ModelReason, Err: d.Cause, Cut: e.cut, cited: d.Cited, droppedSources: d.DroppedSources,
		fx: effects{turns: d.Turns, reset: d.Reset, trim: d.Trim, keep: d.Keep, handoff: d.MarkHandoff}}
	if d.Promised {
		r.Promise = "allow"
		switch {
		case e.p.PromiseHandoff:
			r.Promise = "handoff"
		case e.p.PromiseStrip:
			r.Promise = "strip"
		}
		log.Info("the reply promised a person without handing off", zap.String("bot", id), zap.String("false_promise", r.Promise))
	}
	return r
}

// modelEnd is when the work on an event that must be answered by end
// stops: end less a moment for rendering and writing the answer, a tenth
// of the budget, at most 250ms. It is the deadline of the event's context,
// which the model call, the attachments' fetching and the wait for the
// conversation's lock share.
func modelEnd(end time.Time, budget time.Duration) time.Time {
	return end.Add(-min(budget/10, 250*time.Millisecond))
}

// effects are the store writes an answer implies: its turns for history
// (replacing it when reset) and whether it hands off. commit applies them,
// at once for an answer given in the webhook, after delivery for one sent
// later.
type effects struct {
	turns   []kommbridge.Turn
	reset   bool
	trim    bool // cut the history to its last keep turns first
	keep    int
	handoff bool
}

// commit applies r's effects. It runs after the answer is decided, so it
// gets a moment of its own even if the request's deadline passed.
func (e *event) commit(ctx context.Context, r *Result) {
	wctx, log, st := e.writeCtx(ctx), e.b.log, e.b.store
	if r.fx.trim && !r.fx.reset {
		if err := st.Trim(wctx, e.conv, r.fx.keep); err != nil {
			log.Warn("history not trimmed", zap.String("conversation", e.conv), zap.Error(err))
		}
	}
	switch {
	case r.fx.reset:
		if err := st.Reset(wctx, e.conv, r.fx.turns...); err != nil {
			log.Warn("history not reset", zap.String("conversation", e.conv), zap.Error(err))
		}
	case len(r.fx.turns) > 0:
		if err := st.Append(wctx, e.conv, r.fx.turns...); err != nil {
			log.Warn("history not stored", zap.String("conversation", e.conv), zap.Error(err))
		}
	}
	if r.fx.handoff {
		if err := st.MarkHandoff(wctx, e.conv, e.b.now()); err != nil {
			log.Warn("handoff not recorded", zap.String("conversation", e.conv), zap.Error(err))
		}
	}
	r.fx = effects{}
}
