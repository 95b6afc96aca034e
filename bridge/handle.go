package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/prompt"
)

// handle is the shell around decide: it reads the facts once, asks decide,
// asks the model when told to (with the conversation locked), asks decide
// again, and commits the effects.
//
// While the model works, the webhook's goroutine waits below handle, so
// handle and every function between it and the model call keep small
// frames: what happens before the model and what happens on failure is
// in functions of their own (a goroutine whose stack outgrows 16 KB holds
// 32 KB while it waits).
func (b *Bridge) handle(ctx context.Context, s *settings, p *Profile, ev *kommbridge.Event) Result {
	conv := ev.Conversation()
	if r := b.before(ctx, s, p, ev, conv); r != nil {
		return *r
	}
	lock, err := b.store.Lock(ctx, conv)
	if err != nil {
		return b.failed(ctx, p, ev, conv, storeFailure(ctx, err, "for the conversation's previous message"), true)
	}
	defer lock.Unlock()
	r := b.answer(ctx, s, p, ev, conv)
	b.keepIfHeld(lock, conv, &r)
	b.commit(ctx, conv, &r)
	return r
}

// before decides what needs no model (and commits it), or answers through
// the async path; nil means: lock the conversation and ask the model.
//
//go:noinline
func (b *Bridge) before(ctx context.Context, s *settings, p *Profile, ev *kommbridge.Event, conv string) *Result {
	in := b.facts(ctx, p, ev, conv)
	d := b.settle(ctx, p, conv, in)
	if d.AskModel && b.overLimit(ctx, conv, ev) {
		in.Limited = true
		d = b.settle(ctx, p, conv, in)
	}
	if !d.AskModel {
		r := b.result(p, ev, d)
		b.commit(ctx, conv, &r)
		return &r
	}
	if p.Async && b.deliver != nil {
		r := b.answerAsync(ctx, s, p, ev, conv)
		return &r
	}
	if !hasTime(ctx) {
		r := b.failed(ctx, p, ev, conv, fmt.Errorf("%w before the conversation could be locked", errWaited), false)
		return &r
	}
	return nil
}

// failed is the answer to a failure before the model was asked, committed
// when commit says so.
//
//go:noinline
func (b *Bridge) failed(ctx context.Context, p *Profile, ev *kommbridge.Event, conv string, err error, commit bool) Result {
	r := b.result(p, ev, b.settle(ctx, p, conv, Input{Event: ev, Now: b.now(), Err: err}))
	if commit {
		b.commit(ctx, conv, &r)
	}
	return r
}

// facts reads what decide needs before the model: the custom event's
// prompt in place of the text, and, for a bot silent after a handoff, the
// conversation's handoff mark (others read it only when they hand off;
// see settle).
func (b *Bridge) facts(ctx context.Context, p *Profile, ev *kommbridge.Event, conv string) Input {
	in := Input{Event: ev, Now: b.now()}
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
	at, err := b.store.HandoffAt(ctx, conv)
	if err != nil {
		in.Err = fmt.Errorf("store: %w", err)
	}
	in.HandedOffAt = at
	return in
}

// overLimit applies the rate limits to an event on its way to the model.
// A limiter that fails lets the event through.
func (b *Bridge) overLimit(ctx context.Context, conv string, ev *kommbridge.Event) bool {
	if b.limiter == nil || (b.guard != nil && b.guard.skipping()) {
		return false
	}
	ok, err := b.limiter.Allow(ctx, conv, ev.User())
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
func (b *Bridge) keepIfHeld(lock kommbridge.Lock, conv string, r *Result) {
	if lock.Lost() && len(r.fx.turns) > 0 {
		b.log.Warn("conversation lock lost while answering; this answer's turns are not written to history", zap.String("conversation", conv))
		r.fx.turns = nil
	}
}

// answer asks the model, with the conversation locked, and decides on its
// answer. The history and handoff writes it implies are left in the Result
// for commit.
func (b *Bridge) answer(ctx context.Context, s *settings, p *Profile, ev *kommbridge.Event, conv string) Result {
	history, err := b.store.History(ctx, conv)
	if err == nil {
		user, standIn, outcomes := b.userContent(ctx, p, ev)
		return b.ask(ctx, s, p, ev, conv, &Input{Event: ev, Now: b.now(), UserTurn: standIn}, history, user, outcomes)
	}
	return b.failed(ctx, p, ev, conv, storeFailure(ctx, err, "reading the conversation"), false)
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
func (b *Bridge) settle(ctx context.Context, p *Profile, conv string, in Input) Decision {
	d := decide(p, in)
	if !d.MarkHandoff || !d.Cooldown || !in.HandedOffAt.IsZero() {
		return d
	}
	// A moment of its own: the decision is made even when the budget ran
	// out waiting.
	rctx, cancel := detached(ctx)
	defer cancel()
	at, err := b.store.HandoffAt(rctx, conv)
	if err != nil || at.IsZero() {
		return d // no earlier handoff (or none readable): assign
	}
	in.HandedOffAt = at
	return decide(p, in)
}

// ask calls the model inside the budget and decides on what it said.
func (b *Bridge) ask(ctx context.Context, s *settings, p *Profile, ev *kommbridge.Event, conv string, in *Input, history []kommbridge.Turn, user []llm.Part, outcomes []string) Result {
	req, err := b.request(p, ev, in.Now, history, user)
	if err != nil {
		return b.failed(ctx, p, ev, conv, err, false)
	}
	start := b.now()
	resp, err := b.callModel(ctx, req)
	if errors.Is(err, llm.ErrContextOverflow) && hasTime(ctx) {
		resp, err = b.shorter(ctx, s, p, ev, in, history, user)
	}
	return b.asked(ctx, p, ev, conv, in, &resp, err, start, outcomes)
}

// request is the chat request for the bot's system prompt, the history
// and the user's message.
//
//go:noinline
func (b *Bridge) request(p *Profile, ev *kommbridge.Event, now time.Time, history []kommbridge.Turn, user []llm.Part) (*llm.Request, error) {
	system, err := p.System.Render(vars(ev, now))
	if err != nil {
		return nil, err
	}
	r := prompt.Build(prompt.Input{
		System:      system,
		Whole:       p.wholeSystem(system),
		Contract:    &p.contract,
		History:     history,
		User:        user,
		Model:       p.Model,
		Temperature: p.Temperature,
		MaxTokens:   p.MaxTokens,
		LogProbs:    p.MinTokenConfidence > 0,
	})
	return &r, nil
}

// callModel calls the model within ctx, whose deadline is already the
// model's (see modelEnd).
func (b *Bridge) callModel(ctx context.Context, req *llm.Request) (llm.Response, error) {
	return b.model.Complete(ctx, *req)
}

// shorter asks again after a context overflow: with the older half of the
// history dropped and long documents cut to half; the history kept for the
// conversation is trimmed the same way if that fits.
//
//go:noinline
func (b *Bridge) shorter(ctx context.Context, s *settings, p *Profile, ev *kommbridge.Event, in *Input, history []kommbridge.Turn, user []llm.Part) (llm.Response, error) {
	keep := len(history) / 2
	// Start at a user turn: some backends refuse a conversation that
	// opens with the assistant.
	for keep > 0 && history[len(history)-keep].Role != llm.RoleUser {
		keep--
	}
	b.log.Info("context overflow; asking again with less history", zap.String("bot", p.ID),
		zap.Int("history_turns", len(history)), zap.Int("kept", keep))
	req, err := b.request(p, ev, in.Now, history[len(history)-keep:], prompt.Shorten(user))
	if err != nil {
		return llm.Response{}, err
	}
	resp, err := b.callModel(ctx, req)
	if err == nil {
		in.Kept = &keep
	}
	return resp, err
}

// asked decides on the model's answer (or failure) and notes what it took.
//
//go:noinline
func (b *Bridge) asked(ctx context.Context, p *Profile, ev *kommbridge.Event, conv string, in *Input, resp *llm.Response, err error, start time.Time, outcomes []string) Result {
	in.Asked, in.Err, in.Tokens = true, err, resp.Tokens
	var violation string
	if err == nil {
		in.Reply = prompt.Parse(p.Format, *resp)
		violation = in.Reply.Violation
	}
	r := b.result(p, ev, b.settle(ctx, p, conv, *in))
	r.ModelLatency, r.Model, r.Endpoint, r.Attempts, r.Usage = b.now().Sub(start), resp.Model, resp.Endpoint, resp.Attempts, resp.Usage
	var lerr *llm.Error
	if errors.As(err, &lerr) {
		r.Endpoint, r.Attempts, r.Model = lerr.Endpoint, lerr.Attempts, lerr.Model
	}
	r.Format, r.Violation, r.Attachments, r.FinishReason = p.Format, violation, outcomes, resp.FinishReason
	if resp.FinishReason == "length" {
		b.log.Warn("the answer was cut at the token limit; raise max_tokens", zap.String("bot", p.ID), zap.Int("max_tokens", p.MaxTokens))
	}
	return r
}

// result turns a decision into the Result handle returns, logging what
// the decision could only report.
func (b *Bridge) result(p *Profile, ev *kommbridge.Event, d Decision) Result {
	if d.TemplateErr != nil {
		b.log.Error("template", zap.String("bot", p.ID), zap.Error(d.TemplateErr))
	}
	if d.UnknownTeam != "" {
		b.log.Info("model chose an unknown team; ignored", zap.String("bot", p.ID), zap.String("team", d.UnknownTeam))
	}
	if d.UnknownForm != "" {
		b.log.Info("model asked for an unknown form; ignored", zap.String("bot", p.ID), zap.String("form", d.UnknownForm))
	}
	if len(d.RichDropped) > 0 {
		b.log.Info("rich answer parts left out", zap.String("bot", p.ID), zap.Strings("dropped", d.RichDropped))
	}
	return Result{Reply: d.Reply, ModelReason: d.ModelReason, Err: d.Cause,
		fx: effects{turns: d.Turns, reset: d.Reset, trim: d.Trim, keep: d.Keep, handoff: d.MarkHandoff}}
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
func (b *Bridge) commit(ctx context.Context, conv string, r *Result) {
	sctx, cancel := detached(ctx)
	defer cancel()
	if r.fx.trim && !r.fx.reset {
		if err := b.store.Trim(sctx, conv, r.fx.keep); err != nil {
			b.log.Warn("history not trimmed", zap.String("conversation", conv), zap.Error(err))
		}
	}
	switch {
	case r.fx.reset:
		if err := b.store.Reset(sctx, conv, r.fx.turns...); err != nil {
			b.log.Warn("history not reset", zap.String("conversation", conv), zap.Error(err))
		}
	case len(r.fx.turns) > 0:
		if err := b.store.Append(sctx, conv, r.fx.turns...); err != nil {
			b.log.Warn("history not stored", zap.String("conversation", conv), zap.Error(err))
		}
	}
	if r.fx.handoff {
		if err := b.store.MarkHandoff(sctx, conv, b.now()); err != nil {
			b.log.Warn("handoff not recorded", zap.String("conversation", conv), zap.Error(err))
		}
	}
	r.fx = effects{}
}

// detached is the context of store writes that happen even when the
// budget ran out, with a moment of their own (writeTime). An event's
// writes share one (see writes); elsewhere each call makes its own.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	if w, ok := ctx.Value(writesKey{}).(*writes); ok {
		if w.ctx == nil || w.left() < writeTime/2 {
			// The first write, or one long after an earlier read: a
			// moment of its own again.
			w.end()
			w.ctx, w.cancel = context.WithTimeout(context.WithoutCancel(ctx), writeTime)
		}
		return w.ctx, func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), writeTime)
}

// writeTime is how long an event's store writes may take, once begun.
const writeTime = 2 * time.Second

// writes is the context an event's store writes share (history, handoff
// mark, dedupe record: they come one after the other at the end), made at
// the first of them and made again when less than half of its moment is
// left. Handle puts it in the event's context and ends it; only the
// event's own goroutine uses it.
type writes struct {
	ctx    context.Context
	cancel context.CancelFunc
}

func (w *writes) end() {
	if w.cancel != nil {
		w.cancel()
	}
}

func (w *writes) left() time.Duration {
	dl, _ := w.ctx.Deadline()
	return time.Until(dl)
}

type writesKey struct{}
