package bridge

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
)

// answeredOutcomes are the outcomes in which the bot answered the user.
var answeredOutcomes = map[string]bool{
	kommbridge.OutcomeAnswered: true, kommbridge.OutcomeWelcome: true, kommbridge.OutcomeResolved: true, kommbridge.OutcomeHandoff: true,
	kommbridge.OutcomeNotInKB: true, kommbridge.OutcomeFormIncomplete: true, kommbridge.OutcomeDegraded: true,
	kommbridge.OutcomeFiltered: true, kommbridge.OutcomeTooLong: true,
}

// Answered reports whether an event's outcome answered the user (a
// handoff's message included).
func Answered(outcome string) bool { return answeredOutcomes[outcome] }

// recordOutcome notes what the event did to its conversation's outcome
// record, in the background (the answer is not delayed), and counts an
// outcome it decides. While the store is known to be out nothing is
// noted: no goroutines pile up against it.
func (e *event) recordOutcome(r *Result) {
	b := e.b
	if b.outcomes == nil || r.Outcome == kommbridge.OutcomeDuplicate || r.Outcome == kommbridge.OutcomeHeld || r.Outcome == kommbridge.OutcomeJoined ||
		(b.guard != nil && b.guard.skipping()) {
		return
	}
	ev := e.ev
	step := kommbridge.Step{At: b.now(), Bot: ev.BotID, User: ev.Name == "" || ev.Name == kommbridge.EventMedia,
		Answered: Answered(r.Outcome), HandoffReason: r.HandoffReason, Offline: r.Offline, Resolved: r.Outcome == kommbridge.OutcomeResolved}
	ttl, conv := e.s.outcomeTTL, e.conv
	b.jobs.Add(1)
	go func() {
		defer b.jobs.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		decided, err := b.outcomes.UpdateOutcome(ctx, conv, step, ttl)
		if err != nil {
			b.log.Debug("outcome record not updated", zap.String("conversation", conv), zap.Error(err))
			return
		}
		if decided == "" {
			return
		}
		b.log.Info("conversation outcome", zap.String("bot", step.Bot), zap.String("conversation", conv), zap.String("conversation_outcome", decided))
		if b.onConversation != nil {
			b.onConversation(step.Bot, decided)
		}
	}()
}

// Sweep counts the outcomes that silence decides (a conversation
// resolved by the bot when nothing came after its answer within window,
// one abandoned), once across replicas; serve runs it every minute.
func (b *Bridge) Sweep(ctx context.Context, window time.Duration) {
	s := b.cfg.Load()
	if b.outcomes == nil || b.onConversation == nil {
		return
	}
	now := b.now()
	recs, err := b.outcomes.Outcomes(ctx, now.Add(-window-10*time.Minute))
	if err != nil {
		b.log.Debug("outcome records not read", zap.Error(err))
		return
	}
	for _, r := range recs {
		o := r.Outcome(now, window)
		if o != kommbridge.ConvAbandoned && (o != kommbridge.ConvResolved || !r.ResolvedAt.IsZero()) {
			continue // decided by an event, counted then; or still open
		}
		first, err := b.outcomes.MarkCounted(ctx, r.Conversation, o+":"+r.LastBot.Format(time.RFC3339Nano), s.outcomeTTL)
		if err == nil && first {
			b.log.Info("conversation outcome", zap.String("bot", r.Bot), zap.String("conversation", r.Conversation), zap.String("conversation_outcome", o))
			b.onConversation(r.Bot, o)
		}
	}
}
