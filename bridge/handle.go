package bridge

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/prompt"
)

// errNoText is a model reply with nothing usable in it.
var errNoText = errors.New("model reply had no usable text")

func (b *Bridge) handle(ctx context.Context, s *settings, p *profile, ev *kommbridge.Event) Result {
	conv := ev.Conversation()
	if r, decided := b.classify(ctx, s, p, ev, conv); decided {
		b.commit(ctx, conv, &r)
		return r
	}
	if p.Async.Enabled && b.deliver != nil {
		return b.answerAsync(ctx, s, p, ev, conv)
	}
	if !hasTime(ctx) {
		return b.busy(s, errors.New("the reply budget was spent before the conversation could be locked"))
	}
	lock, err := b.store.Lock(ctx, conv)
	if err != nil {
		if ctx.Err() != nil {
			return b.busy(s, fmt.Errorf("waiting for the conversation's previous message: %w", err))
		}
		r := b.failed(ctx, p, ev, fmt.Errorf("store: %w", err))
		b.commit(ctx, conv, &r)
		return r
	}
	defer lock.Unlock()
	r := b.answer(ctx, s, p, ev, conv)
	b.keepIfHeld(lock, conv, &r)
	b.commit(ctx, conv, &r)
	return r
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

// busy is the answer when the model could not be called in time: no model
// call slot came free, or the budget went on waiting for the conversation's
// previous message. The model is fine, so nobody is handed off.
func (b *Bridge) busy(s *settings, err error) Result {
	return Result{Err: err, Reply: kommbridge.Reply{Messages: []kommbridge.Message{{Text: s.busyMessage}}, Outcome: kommbridge.OutcomeBusy}}
}

// classify answers the events that need no model: WELCOME, the "Talk to
// human" button, a handoff phrase, an empty event, a handed-off
// conversation told to stay silent, and an event over a limit.
func (b *Bridge) classify(ctx context.Context, s *settings, p *profile, ev *kommbridge.Event, conv string) (Result, bool) {
	switch {
	case ev.Name == kommbridge.EventWelcome:
		return b.welcome(ctx, p, ev, conv), true
	case ev.TalkToHuman:
		return b.handoffNow(ctx, p, ev, conv, kommbridge.HandoffButton), true
	}
	if tpl, ok := p.EventTemplates[ev.Name]; ok && ev.Name != kommbridge.EventMedia {
		t, err := tpl.Render(b.vars(ev))
		if err != nil {
			return b.failed(ctx, p, ev, err), true
		}
		ev.Text = t
	}
	text := strings.TrimSpace(ev.Text)
	if text == "" && len(ev.Attachments) == 0 {
		return Result{Reply: kommbridge.Reply{Messages: []kommbridge.Message{}, Outcome: kommbridge.OutcomeIgnored}}, true
	}
	if len(p.phrases) > 0 && text != "" {
		w := words(text)
		for _, ph := range p.phrases {
			if containsPhrase(w, ph) {
				return b.handoffNow(ctx, p, ev, conv, kommbridge.HandoffUserRequest), true
			}
		}
	}
	if p.Handoff.After == "silent" {
		at, err := b.store.HandoffAt(ctx, conv)
		if err != nil {
			return b.failed(ctx, p, ev, fmt.Errorf("store: %w", err)), true
		}
		if !at.IsZero() {
			return Result{Reply: kommbridge.Reply{Messages: []kommbridge.Message{}, Outcome: kommbridge.OutcomeSilent}}, true
		}
	}
	if b.limiter != nil && (b.guard == nil || !b.guard.skipping()) {
		ok, err := b.limiter.Allow(ctx, conv, ev.User())
		switch {
		case err != nil && b.guard != nil:
			b.guard.fail(err) // the store's outage, logged once
		case err != nil:
			b.log.Warn("limiter unavailable; letting the event through", zap.Error(err))
		case !ok:
			return Result{Reply: kommbridge.Reply{
				Messages: []kommbridge.Message{{Text: s.limitMessage}},
				Outcome:  kommbridge.OutcomeLimited,
			}}, true
		}
	}
	return Result{}, false
}

// answer asks the model, with the conversation locked. The history and
// handoff writes it implies are left in the Result for commit.
func (b *Bridge) answer(ctx context.Context, s *settings, p *profile, ev *kommbridge.Event, conv string) Result {
	history, err := b.store.History(ctx, conv)
	if err != nil {
		if ctx.Err() != nil {
			return b.busy(s, fmt.Errorf("reading history: %w", err))
		}
		return b.failed(ctx, p, ev, fmt.Errorf("store: %w", err))
	}
	vars := b.vars(ev)
	system, err := p.SystemTemplate.Render(vars)
	if err != nil {
		return b.failed(ctx, p, ev, err)
	}
	user, standIn, outcomes := b.userContent(ctx, p, ev)
	req := prompt.Build(prompt.Input{
		System:      system,
		Contract:    &p.contract,
		History:     history,
		User:        user,
		Model:       p.Model,
		Temperature: p.Temperature,
		MaxTokens:   p.MaxTokens,
		LogProbs:    p.Handoff.MinTokenConfidence > 0,
	})

	mctx, cancel := context.WithDeadline(ctx, modelDeadline(ctx, s.budget))
	start := b.now()
	resp, err := b.model.Complete(mctx, req)
	cancel()
	userTurn := kommbridge.Turn{Role: llm.RoleUser, Text: standIn}
	r := Result{ModelLatency: b.now().Sub(start), Model: resp.Model, Endpoint: resp.Endpoint, Attempts: resp.Attempts,
		Usage: resp.Usage, Format: p.ReplyFormat, Attachments: outcomes}
	var lerr *llm.Error
	if errors.As(err, &lerr) {
		r.Endpoint, r.Attempts = lerr.Endpoint, lerr.Attempts
	}
	var parsed prompt.Parsed
	if err == nil {
		parsed = prompt.Parse(p.ReplyFormat, resp)
		r.Violation = parsed.Violation
		if parsed.Text == "" && !parsed.Handoff {
			err = errNoText
		}
	}
	if errors.Is(err, llm.ErrBusy) || errors.Is(err, llm.ErrNoTime) {
		f := b.busy(s, err)
		r.Reply, r.Err = f.Reply, f.Err
		return r
	}
	if err != nil {
		f := b.failed(ctx, p, ev, err)
		r.Reply, r.Err, r.fx = f.Reply, f.Err, f.fx
		r.fx.turns = []kommbridge.Turn{userTurn}
		return r
	}

	reason := handoffReason(p, parsed, resp)
	if reason == "" {
		msg := kommbridge.Message{Text: parsed.Text, QuickReplies: quickReplies(parsed.Suggested, p.maxSuggested)}
		if p.LinkButtons {
			msg.Links = links(parsed.Text)
		}
		r.Reply = kommbridge.Reply{Messages: []kommbridge.Message{msg}, Outcome: kommbridge.OutcomeAnswered}
		r.fx.turns = []kommbridge.Turn{userTurn, {Role: llm.RoleAssistant, Text: parsed.Text}}
		return r
	}
	team := ""
	if parsed.Team != "" {
		if id, ok := p.Handoff.Teams[parsed.Team]; ok {
			team = id
		} else {
			b.log.Info("model chose an unknown team; ignored", zap.String("bot", p.ID), zap.String("team", parsed.Team))
		}
	}
	var msgs []kommbridge.Message
	if p.Handoff.IncludeReply && parsed.Text != "" {
		msgs = append(msgs, kommbridge.Message{Text: parsed.Text})
	}
	hm, mark := b.handoffMessage(ctx, p, ev, conv, team)
	msgs = append(msgs, hm)
	r.Reply = kommbridge.Reply{Messages: msgs, Outcome: kommbridge.OutcomeHandoff, HandoffReason: reason}
	r.fx = effects{turns: []kommbridge.Turn{userTurn, {Role: llm.RoleAssistant, Text: joinText(msgs)}}, handoff: mark}
	return r
}

// modelDeadline leaves a little of the budget for rendering and writing
// the answer: a tenth of it, at most 250ms.
func modelDeadline(ctx context.Context, budget time.Duration) time.Time {
	dl, _ := ctx.Deadline()
	return dl.Add(-min(budget/10, 250*time.Millisecond))
}

func (b *Bridge) vars(ev *kommbridge.Event) prompt.Vars {
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
		Now:            b.now(),
	}
}

func (b *Bridge) welcome(ctx context.Context, p *profile, ev *kommbridge.Event, conv string) Result {
	text, err := p.WelcomeTemplate.Render(b.vars(ev))
	if err != nil {
		b.log.Error("welcome template", zap.String("bot", p.ID), zap.Error(err))
	}
	text = strings.TrimSpace(text)
	r := Result{Reply: kommbridge.Reply{Messages: []kommbridge.Message{}, Outcome: kommbridge.OutcomeWelcome}}
	var turns []kommbridge.Turn
	if text != "" {
		r.Messages = append(r.Messages, kommbridge.Message{Text: text, QuickReplies: quickReplies(p.Welcome.SuggestedReplies, len(p.Welcome.SuggestedReplies))})
		turns = append(turns, kommbridge.Turn{Role: llm.RoleAssistant, Text: text})
	}
	if err := b.store.Reset(ctx, conv, turns...); err != nil {
		b.log.Warn("history not reset", zap.String("bot", p.ID), zap.Error(err))
	}
	return r
}

// handoffNow hands off without asking the model.
func (b *Bridge) handoffNow(ctx context.Context, p *profile, ev *kommbridge.Event, conv, reason string) Result {
	hm, mark := b.handoffMessage(ctx, p, ev, conv, "")
	return Result{
		Reply: kommbridge.Reply{Messages: []kommbridge.Message{hm}, Outcome: kommbridge.OutcomeHandoff, HandoffReason: reason},
		fx:    effects{turns: []kommbridge.Turn{{Role: llm.RoleUser, Text: ev.Text}, {Role: llm.RoleAssistant, Text: hm.Text}}, handoff: mark},
	}
}

// handoffMessage renders the handoff message. Within the cooldown of an
// earlier handoff the assignment is not sent again; mark says whether this
// handoff is to be recorded (by commit).
func (b *Bridge) handoffMessage(ctx context.Context, p *profile, ev *kommbridge.Event, conv, team string) (kommbridge.Message, bool) {
	text, err := p.HandoffTemplate.Render(b.vars(ev))
	if err != nil || strings.TrimSpace(text) == "" {
		text = p.Handoff.Message
	}
	msg := kommbridge.Message{Text: text, Handoff: &kommbridge.Handoff{AssignTo: p.Handoff.AssignTo, Team: team}}
	sctx, cancel := detached(ctx)
	defer cancel()
	if at, err := b.store.HandoffAt(sctx, conv); err == nil && !at.IsZero() && b.now().Sub(at) < p.Handoff.Cooldown.D() {
		msg.Handoff = nil
		return msg, false
	}
	return msg, true
}

// failed applies the bot's error policy.
func (b *Bridge) failed(ctx context.Context, p *profile, ev *kommbridge.Event, err error) Result {
	text, rerr := p.ErrorTemplate.Render(b.vars(ev))
	if rerr != nil || strings.TrimSpace(text) == "" {
		text = p.Handoff.ErrorMessage
	}
	r := Result{Err: err, Reply: kommbridge.Reply{Messages: []kommbridge.Message{{Text: text}}, Outcome: kommbridge.OutcomeError}}
	if p.Handoff.OnError == "handoff" {
		reason := kommbridge.HandoffError
		if errors.Is(err, llm.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			reason = kommbridge.HandoffTimeout
		}
		conv := ev.Conversation()
		hm, mark := b.handoffMessage(ctx, p, ev, conv, "")
		r.Messages = append(r.Messages, hm)
		r.Outcome, r.HandoffReason = kommbridge.OutcomeHandoff, reason
		r.fx.handoff = mark
	}
	return r
}

// effects are the store writes an answer implies: its turns for history
// and whether it hands off. commit applies them, at once for an answer
// given in the webhook, after delivery for one sent later.
type effects struct {
	turns   []kommbridge.Turn
	handoff bool
}

// commit applies r's effects. It runs after the answer is decided, so it
// gets a moment of its own even if the request's deadline passed.
func (b *Bridge) commit(ctx context.Context, conv string, r *Result) {
	sctx, cancel := detached(ctx)
	defer cancel()
	if len(r.fx.turns) > 0 {
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

func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
}

func joinText(msgs []kommbridge.Message) string {
	parts := make([]string, len(msgs))
	for i, m := range msgs {
		parts[i] = m.Text
	}
	return strings.Join(parts, "\n")
}
