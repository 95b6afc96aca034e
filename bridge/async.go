package bridge

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
)

// Deliverer posts a message into a conversation as the bot, after the
// webhook's window; adapter.KommunicateAPI implements it. mark names the
// delivery (unique per message of an answer), so that a send whose
// outcome is unknown is not repeated blindly. Send retries what surely
// did not arrive while ctx allows, and returns the final error:
// ErrDeliveryUnsure when the message may have arrived.
type Deliverer interface {
	Send(ctx context.Context, mark, botID, groupID, channel string, m kommbridge.Message) error
}

// ErrDeliveryUnsure is a send that went out and got no answer, and that
// could not be found in the conversation: it is not sent again, since the
// user may have it.
var ErrDeliveryUnsure = errors.New("not known whether the message arrived")

// Pending is a durable queue of held answers, so that an answer a replica
// promised survives that replica; store/redis implements it. Entries carry
// a lease: one whose lease ran out is taken over by another replica.
type Pending interface {
	AddPending(ctx context.Context, id string, job []byte, lease time.Duration) error
	RenewPending(ctx context.Context, id string, lease time.Duration) error
	DonePending(ctx context.Context, id string) error
	// TakePending returns a job whose lease ran out, leased anew; id is
	// "" when there is none.
	TakePending(ctx context.Context, lease time.Duration) (id string, job []byte, err error)
}

// DeliveryResults are the fates of a held answer Deps.OnDelivery hears
// of: delivered, failed (handed off, since the user was promised an
// answer), dropped (the conversation was handed off meanwhile), joined (a
// newer message's answer holds it), unsure (a send went out unanswered
// and could not be found; not repeated).
var DeliveryResults = []string{"delivered", "failed", "dropped", "joined", "unsure"}

const (
	waiting int32 = iota
	answered
	held
)

// asyncJob is one message answered in the background.
type asyncJob struct {
	ID       string           `json:"id"`
	Event    kommbridge.Event `json:"event"`
	Deadline time.Time        `json:"deadline"`

	state  atomic.Int32
	result chan Result
}

// answerAsync starts the answer in the background and waits for it until
// hold_after. If it is not ready by then, the webhook answers the hold
// message and the answer is delivered through Kommunicate's API.
func (e *event) answerAsync(ctx context.Context) Result {
	b, p, ev := e.b, e.p, e.ev
	j := &asyncJob{ID: jobID(ev), Event: *ev, Deadline: ev.ReceivedAt.Add(p.AsyncMaxWait), result: make(chan Result, 1)}
	b.jobs.Add(1)
	go b.run(j, e.s, p)
	t := time.NewTimer(time.Until(ev.ReceivedAt.Add(p.HoldAfter)))
	defer t.Stop()
	select {
	case r := <-j.result:
		return r
	case <-t.C:
	case <-ctx.Done():
	}
	if !j.state.CompareAndSwap(waiting, held) {
		return <-j.result // it finished just now
	}
	if b.pending != nil {
		data, _ := json.Marshal(j)
		if err := b.pending.AddPending(e.writeCtx(ctx), j.ID, data, b.lease); err != nil {
			b.log.Warn("held answer not queued durably; it is delivered if this replica lives", zap.Error(err))
		}
	}
	return Result{Reply: kommbridge.Reply{Messages: []kommbridge.Message{{Text: p.HoldMessage}}, Outcome: kommbridge.OutcomeHeld}}
}

func jobID(ev *kommbridge.Event) string {
	if ev.Key != "" {
		return ev.DedupeKey()
	}
	return fmt.Sprintf("%s/%s/%d", ev.BotID, ev.ConversationID, ev.ReceivedAt.UnixNano())
}

// run answers j with the conversation locked, up to j.Deadline, and either
// hands the result to the waiting webhook or delivers it.
func (b *Bridge) run(j *asyncJob, s *settings, p *Profile) {
	defer b.jobs.Done()
	ctx, cancel := b.jobContext(modelEnd(j.Deadline, s.budget))
	defer cancel()
	if b.pending != nil {
		stop := b.renew(j)
		defer stop()
	}
	e := b.newEvent(s, p, &j.Event)
	defer e.end()
	// Holding the lock until delivery keeps the conversation in order: a
	// newer message waits for this answer.
	lock, early := e.lock(ctx)
	var r Result
	if early != nil {
		r = *early
	} else {
		defer lock.Unlock()
		r = e.answer(ctx)
		e.keepIfHeld(lock, &r)
	}
	if j.state.CompareAndSwap(waiting, answered) {
		e.commit(ctx, &r)
		j.result <- r
		return
	}
	if b.stopped() {
		return // abandoned at shutdown: it stays queued for another replica
	}
	e.deliverHeld(j, &r)
}

// renew keeps j's lease while it runs and is held; the func stops it.
func (b *Bridge) renew(j *asyncJob) func() {
	return kommbridge.Renewing(b.lease/3, func() bool {
		if j.state.Load() == held {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := b.pending.RenewPending(ctx, j.ID, b.lease); err != nil {
				b.log.Warn("held answer's lease not renewed; another replica may deliver it too", zap.String("id", j.ID), zap.Error(err))
			}
		}
		return true
	})
}

// deliverHeld posts a held answer, message by message, each at most once
// (a record per message survives a replica that dies mid-delivery), then
// records it in history. A conversation handed off meanwhile gets nothing.
func (e *event) deliverHeld(j *asyncJob, r *Result) {
	b, conv := e.b, e.conv
	// Sends are retried until the job's own deadline, and for at least
	// minDelivery after the answer was made.
	ctx, cancel := b.jobContext(later(j.Deadline, b.now().Add(minDelivery)))
	defer cancel()
	log := b.log.With(zap.String("bot", j.Event.BotID), zap.String("conversation", j.Event.ConversationID), zap.String("outcome", r.Outcome))
	defer func() {
		if b.stopped() {
			return // abandoned at shutdown: it stays queued for another replica
		}
		if b.pending != nil {
			if err := b.pending.DonePending(ctx, j.ID); err != nil {
				log.Warn("held answer not removed from the queue", zap.Error(err))
			}
		}
	}()
	if r.Outcome == kommbridge.OutcomeJoined {
		log.Info("held answer joined a newer message's; nothing to deliver")
		b.onDeliv("joined")
		return
	}
	if at, err := b.store.HandoffAt(ctx, conv); err == nil && at.After(j.Event.ReceivedAt) {
		log.Info("held answer dropped: the conversation was handed off meanwhile")
		r.fx.handoff = false
		// The user's messages only.
		for i, t := range r.fx.turns {
			if t.Role != llm.RoleUser {
				r.fx.turns = r.fx.turns[:i]
				break
			}
		}
		e.commit(ctx, r)
		b.onDeliv("dropped")
		return
	}
	for i, m := range r.Messages {
		key := "deliver/" + j.ID + "/" + strconv.Itoa(i)
		_, claimed, err := b.store.Claim(ctx, key)
		if err != nil {
			log.Error("held answer not delivered: the store failed", zap.Error(err))
			e.deliveryFailed(j, err)
			return
		}
		if !claimed {
			continue // delivered before, by a replica that did not finish
		}
		err = b.deliver.Send(ctx, key, j.Event.BotID, j.Event.ConversationID, r.Channel, m)
		switch {
		case errors.Is(err, ErrDeliveryUnsure):
			// The user may have it: not sent again, and kept as sent.
			b.store.Finish(ctx, key, []byte("unsure"))
			log.Warn("held answer may not have arrived; not sent again", zap.Int("message", i), b.errField(err, m.Text))
			e.commit(ctx, r)
			b.onDeliv("unsure")
			return
		case err != nil:
			b.store.Release(ctx, key)
			log.Error("held answer not delivered; handing the conversation to a person", zap.Int("message", i), b.errField(err, m.Text))
			e.deliveryFailed(j, err)
			return
		}
		if err := b.store.Finish(ctx, key, []byte("sent")); err != nil {
			log.Warn("delivery record not stored", zap.Error(err))
		}
	}
	e.commit(ctx, r)
	log.Info("held answer delivered", zap.Int("messages", len(r.Messages)))
	e.summarize(r)
	e.recordOutcome(r)
	b.onDeliv("delivered")
}

// deliveryFailed hands the conversation of a held answer that could not
// be delivered to a person: the user was promised an answer. It sends the
// handoff message (one try: Kommunicate's API just failed) and records the
// handoff whether or not that went through.
func (e *event) deliveryFailed(j *asyncJob, cause error) {
	b := e.b
	b.onDeliv("failed")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in := Input{Event: e.ev, Now: b.now()}
	msg, _, _ := e.p.handoffMessage(in, "", false)
	if msg.Handoff == nil {
		msg.Handoff = &kommbridge.Handoff{AssignTo: e.p.AssignTo}
	}
	log := b.log.With(zap.String("bot", j.Event.BotID), zap.String("conversation", j.Event.ConversationID),
		zap.String("handoff_reason", kommbridge.HandoffDelivery))
	if err := b.deliver.Send(ctx, "handoff/"+j.ID, j.Event.BotID, j.Event.ConversationID, cmp.Or(e.p.Channel, kommbridge.ChannelWeb), msg); err != nil {
		log.Error("handoff after a failed delivery not sent either", zap.NamedError("delivery_error", cause), zap.Error(err))
	} else {
		log.Info("handed off after a failed delivery", zap.NamedError("delivery_error", cause))
	}
	if b.onHandoff != nil {
		b.onHandoff(kommbridge.HandoffDelivery)
	}
	if err := b.store.MarkHandoff(ctx, e.conv, b.now()); err != nil {
		log.Warn("handoff not recorded", zap.Error(err))
	}
	r := &Result{Reply: kommbridge.Reply{Messages: []kommbridge.Message{msg}, HandoffReason: kommbridge.HandoffDelivery, Outcome: kommbridge.OutcomeHandoff}}
	e.summarize(r)
	e.recordOutcome(r)
}

// minDelivery is the least time a held answer's delivery is tried for.
const minDelivery = 15 * time.Second

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Recover takes over held answers whose replica stopped before delivering
// them (their lease ran out), checking every interval until ctx ends. It
// does nothing without a durable queue or a Deliverer.
func (b *Bridge) Recover(ctx context.Context, every time.Duration) {
	if b.pending == nil || b.deliver == nil {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		for {
			id, data, err := b.pending.TakePending(ctx, b.lease)
			if err != nil || id == "" {
				break
			}
			j := &asyncJob{result: make(chan Result, 1)}
			if err := json.Unmarshal(data, j); err != nil {
				b.log.Error("unreadable held answer dropped", zap.String("id", id), zap.Error(err))
				b.done(ctx, id)
				continue
			}
			s := b.cfg.Load()
			p := s.bot(j.Event.BotID)
			if p == nil {
				b.log.Warn("held answer for a bot no longer configured dropped", zap.String("bot", j.Event.BotID))
				b.done(ctx, id)
				continue
			}
			b.log.Info("taking over a held answer", zap.String("bot", j.Event.BotID), zap.String("conversation", j.Event.ConversationID))
			j.state.Store(held)
			b.jobs.Add(1)
			go b.run(j, s, p)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Drain waits for answers in the background until ctx ends, then abandons
// the rest: with a durable queue another replica takes them over.
func (b *Bridge) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { b.jobs.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		b.stopOnce.Do(func() { close(b.stopping) })
		<-done
		return ctx.Err()
	}
}

// stopped reports whether Drain gave up on background answers.
func (b *Bridge) stopped() bool {
	select {
	case <-b.stopping:
		return true
	default:
		return false
	}
}

// jobContext is a background answer's context: it ends at deadline, or
// when Drain gives up.
func (b *Bridge) jobContext(deadline time.Time) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	go func() {
		select {
		case <-b.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// done removes a held answer from the durable queue; a failure is logged
// (the answer may then be delivered twice, never lost).
func (b *Bridge) done(ctx context.Context, id string) {
	if err := b.pending.DonePending(ctx, id); err != nil {
		b.log.Warn("held answer not removed from the queue", zap.String("id", id), zap.Error(err))
	}
}
