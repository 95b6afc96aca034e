// Package bridge is the pipeline for one Kommunicate event, with no HTTP in
// it: dedupe, the bot profile, classification, limits, per-conversation
// order, the prompt, the model call inside the reply budget, the handoff
// decision and history. The webhook and the CLI's try both call Handle.
package bridge

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/kb"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/media"
)

// Store is what the bridge keeps between events. store/memory and
// store/redis implement it.
type Store interface {
	History(ctx context.Context, conv string) ([]kommbridge.Turn, error)
	Append(ctx context.Context, conv string, turns ...kommbridge.Turn) error
	Reset(ctx context.Context, conv string, turns ...kommbridge.Turn) error
	// Trim keeps the last keep turns; the handed-off mark stays.
	Trim(ctx context.Context, conv string, keep int) error
	MarkHandoff(ctx context.Context, conv string, at time.Time) error
	HandoffAt(ctx context.Context, conv string) (time.Time, error)
	// Lock serializes one conversation's events.
	Lock(ctx context.Context, conv string) (kommbridge.Lock, error)
	// Claim, Finish and Release make one answer per message key; see
	// memory.Store.Claim.
	Claim(ctx context.Context, key string) (answer []byte, claimed bool, err error)
	Finish(ctx context.Context, key string, answer []byte) error
	Release(ctx context.Context, key string)
	// Queue records that message key of conv waits for the conversation's
	// lock, text being its words as history keeps them. Dequeue, called
	// with the lock held, says what key's event does: answer the texts
	// queued up to it, oldest first (it was the newest waiting), leave
	// them to a newer message (Joined), or answer alone (it was not
	// queued, or the queue was lost).
	Queue(ctx context.Context, conv, key, text string) error
	Dequeue(ctx context.Context, conv, key string) (texts []string, q kommbridge.Queued, err error)
}

// Outcomes keeps each conversation's outcome record; the stores
// implement it.
type Outcomes interface {
	UpdateOutcome(ctx context.Context, conv string, step kommbridge.Step, ttl time.Duration) (decided string, err error)
	Outcomes(ctx context.Context, since time.Time) ([]kommbridge.ConvRecord, error)
	MarkCounted(ctx context.Context, conv, outcome string, ttl time.Duration) (first bool, err error)
}

// Model answers chat requests; *llm.Client implements it.
type Model interface {
	Complete(ctx context.Context, r llm.Request) (llm.Response, error)
}

// Limiter says whether an event may reach the model; nil means no limits.
type Limiter interface {
	Allow(ctx context.Context, conv, user string) (bool, error)
}

// ErrUnknownBot is returned for a botId that matches no bot and no "*".
var ErrUnknownBot = errors.New("unknown bot")

// Deps are the Bridge's collaborators. Store and Model are required.
type Deps struct {
	Store   Store
	Model   Model
	Limiter Limiter
	// Media reads attachments; nil reads none (images pass by URL,
	// other files are named only).
	Media Media
	// Deliver posts answers after the webhook's window (bots with async
	// enabled); nil turns async off.
	Deliver Deliverer
	// Pending, when set, keeps held answers durably so that another
	// replica delivers those of one that stopped (store/redis has one).
	Pending Pending
	// TakeoverAfter is how long a held answer stays with a replica that
	// stopped renewing it before another takes it over [15s].
	TakeoverAfter time.Duration
	// OnDelivery, when set, hears of each held answer's fate, one of
	// DeliveryResults.
	OnDelivery func(outcome string)
	// OnHandoff, when set, hears of a handoff made outside a webhook's
	// answer (a held answer that could not be delivered), by reason.
	OnHandoff func(reason string)
	// Local, when set, stands in for Store while Store fails (the store
	// outage policy "degrade"): events are answered without stored history
	// instead of failing. nil makes a store failure an error.
	Local Store
	// OnOutage, when set, hears when Store becomes unreachable (true) and
	// reachable again (false); only with Local.
	OnOutage func(down bool)
	// Knowledge serves the help centers of bots with knowledge; nil: they
	// answer without passages. Gaps, when set, records the questions the
	// help center did not answer.
	Knowledge Knowledge
	Gaps      Gaps
	// ConfirmSecret signs confirmation buttons; replicas need the same
	// one. Empty: one is made for this process.
	ConfirmSecret []byte
	// ActionStub, when set, answers action calls instead of the APIs
	// (eval suites); OnAction hears of every action call's kind.
	ActionStub func(name string, args map[string]any) (status int, body []byte, ok bool)
	OnAction   func(name, kind string, took time.Duration)
	// OnNote hears of each handoff note's fate, one of NoteResults.
	OnNote func(result string)
	// Outcomes keeps each conversation's outcome record; OnConversation
	// hears of each outcome decided (kommbridge.ConversationOutcomes).
	Outcomes       Outcomes
	OnConversation func(bot, outcome string)
	Log            *zap.Logger
	// LogContent: log message text (log.content); otherwise the error
	// messages of servers, which may echo it, are logged redacted.
	LogContent bool
	// Now defaults to time.Now.
	Now func() time.Time
}

// Bridge handles events. It is safe for concurrent use; Reload swaps its
// configuration while events in flight finish with the one they began with.
type Bridge struct {
	cfg      atomic.Pointer[settings]
	store    Store
	guard    *guarded // store, when it has a local stand-in
	model    Model
	limiter  Limiter
	media    Media
	deliver  Deliverer
	pending  Pending // the durable queue of held answers, if any
	jobs     sync.WaitGroup
	stopping chan struct{} // closed when Drain gives up on background answers
	stopOnce sync.Once
	lease    time.Duration
	onDeliv  func(string)
	// onHandoff hears of handoffs made outside a webhook's answer; nil: no one.
	onHandoff func(string)
	knowledge Knowledge
	gaps      Gaps
	// confirmSecret signs confirmations; actionStub and onAction are set
	// on each configuration's action runner.
	confirmSecret  []byte
	actionStub     func(name string, args map[string]any) (int, []byte, bool)
	onAction       func(name, kind string, took time.Duration)
	onNote         func(result string)
	outcomes       Outcomes
	onConversation func(bot, outcome string)
	// notifyClient posts handoff notes to notify_url under media's address
	// rules.
	notifyClient *http.Client
	log          *zap.Logger
	logContent   bool // log message text; see errField
	now          func() time.Time
}

// New builds a Bridge for cfg.
func New(cfg *config.Config, d Deps) (*Bridge, error) {
	if d.Store == nil || d.Model == nil {
		return nil, errors.New("bridge: Store and Model are required")
	}
	if d.Log == nil {
		d.Log = zap.NewNop()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Media == nil {
		d.Media = media.New(media.Options{})
	}
	if d.Local != nil {
		d.Store = newGuarded(d.Store, d.Local, d.Now, d.Log, d.OnOutage)
	}
	b := &Bridge{store: d.Store, model: d.Model, limiter: d.Limiter, media: d.Media, deliver: d.Deliver, onDeliv: d.OnDelivery, onHandoff: d.OnHandoff,
		knowledge: d.Knowledge, gaps: d.Gaps, confirmSecret: d.ConfirmSecret, actionStub: d.ActionStub, onAction: d.OnAction, onNote: d.OnNote,
		outcomes: d.Outcomes, onConversation: d.OnConversation,
		log: d.Log, logContent: d.LogContent, now: d.Now}
	b.notifyClient = media.NewFetcher(media.FetchOptions{AllowedHosts: cfg.Media.AllowedHosts, Timeout: 10 * time.Second}).Client(
		func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse })
	if len(b.confirmSecret) == 0 {
		b.confirmSecret = make([]byte, 32)
		rand.Read(b.confirmSecret)
	}
	b.stopping = make(chan struct{})
	b.pending = d.Pending
	b.lease = d.TakeoverAfter
	if b.lease == 0 {
		b.lease = 15 * time.Second
	}
	if g, ok := d.Store.(*guarded); ok {
		b.guard = g
	}
	if b.onDeliv == nil {
		b.onDeliv = func(string) {}
	}
	if err := b.Reload(cfg); err != nil {
		return nil, err
	}
	return b, nil
}

// Degraded reports whether events are being answered from the local
// stand-in because the shared store failed (store.on_outage: degrade).
func (b *Bridge) Degraded() bool { return b.guard != nil && b.guard.skipping() }

// Reload makes cfg the configuration for events that arrive from now on.
// A cfg whose templates do not parse is refused and the one in force
// stays; config.Load with CheckTemplates refuses it before.
func (b *Bridge) Reload(cfg *config.Config) error {
	s, errs := compile(cfg)
	if len(errs) > 0 {
		return fmt.Errorf("bridge: %w", errors.Join(errs...))
	}
	s.actions.Stub, s.actions.Observe = b.actionStub, b.onAction
	b.cfg.Store(s)
	return nil
}

// Result is a Reply with what it took to make it, for logs and metrics.
type Result struct {
	kommbridge.Reply
	// Model call details; zero when the model was not called.
	Model        string
	Endpoint     string
	Attempts     int
	Usage        llm.Usage
	ModelLatency time.Duration
	// Violation is how the model's reply broke its contract, if it did,
	// in the bot's Format.
	Violation string
	Format    kommbridge.ReplyFormat
	// Attachments is the outcome of each attachment read: "ok",
	// "unsupported" or "failed".
	Attachments []string
	// Err is the model's or the store's failure behind an error reply.
	Err error
	// Degraded is set when the shared store was out and the local one
	// stood in (no stored history).
	Degraded bool
	// ModelReason is the model's own reason for a handoff it asked for.
	ModelReason string
	// FinishReason is why the model stopped ("stop", "length", ...).
	FinishReason string
	// Cut lists what of the message was cut to its bounds (CutKinds).
	Cut []string
	// Knowledge is what the bot's help center did, nil when not asked.
	Knowledge *KBResult
	// Actions are the action calls the event made (or refused).
	Actions []ActionCall
	// Promise is what was done with a reply that promised a person
	// without handing off (PromiseActions); "" when none did.
	Promise string

	fx effects // writes still to make; see commit
	// cited and droppedSources are the decision's citations, for
	// Knowledge.
	cited          []kb.Passage
	droppedSources int
}

// PromiseActions are what a false promise gets: a real handoff, the
// promise taken out, or left.
var PromiseActions = []string{"handoff", "strip", "allow"}

// Handle answers one event. The only error is ErrUnknownBot; every other
// failure still yields a Reply (the bot's error policy, or the busy
// message when the model was never called).
//
// The answer is made whether or not the caller waits for it, inside the
// reply budget: a caller that goes away (a proxy's timeout, a load test
// stopping) is no failure, and Kommunicate's retry of the same key gets
// this answer from the dedupe record.
func (b *Bridge) Handle(ctx context.Context, ev kommbridge.Event) (Result, error) {
	s := b.cfg.Load()
	p := s.bot(ev.BotID)
	if p == nil {
		return Result{}, fmt.Errorf("bridge: %w %q: no bot with that id and no \"*\" bot", ErrUnknownBot, ev.BotID)
	}
	if ev.ReceivedAt.IsZero() {
		ev.ReceivedAt = b.now()
	}
	// One deadline for the work, model call included (modelEnd); the
	// store writes that follow have their own (event.writeCtx).
	e := b.newEvent(s, p, &ev)
	defer e.end()
	ctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), modelEnd(ev.ReceivedAt.Add(s.budget), s.budget))
	defer cancel()
	start := b.now()
	r := e.deduped(ctx)
	e.summarize(&r)
	e.recordOutcome(&r)
	if b.guard != nil && b.guard.usedLocalSince(start) {
		r.Degraded = true
		if r.Outcome == kommbridge.OutcomeAnswered {
			r.Outcome = kommbridge.OutcomeDegraded
		}
	}
	return r, nil
}

// errField is err for a log line: redacted (kommbridge.Redact, texts
// among what is taken out) unless content logging is on, since a
// server's error may echo what it was sent.
func (b *Bridge) errField(err error, texts ...string) zap.Field {
	if b.logContent || err == nil {
		return zap.Error(err)
	}
	return zap.String("error", kommbridge.Redact(err.Error(), texts...))
}
