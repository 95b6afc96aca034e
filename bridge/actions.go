package bridge

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/action"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/prompt"
)

// confirmSettings are the confirmations' secret, life and words.
type confirmSettings struct {
	ttl                                 time.Duration
	yes, no                             string
	cancelled, invalid, done            string
	identitySecret, identityKey, signIn string
}

// ActionCall is one action call an event made, for logs and metrics.
type ActionCall struct {
	Action string
	Kind   string // an action.Kind*
	Status int
	Took   time.Duration
	// Args are the arguments as the model wrote them, and Told what the
	// model was told of the call: for try and eval, never logged.
	Args, Told string
}

// actionRun is what the actions of one event did: the calls, what
// history keeps of them, and the confirmation to show, if any.
type actionRun struct {
	calls   []ActionCall
	notes   []string
	confirm *Confirm
}

// Confirm is a confirmation to show: its question and its buttons.
type Confirm struct {
	Text string
	kommbridge.Confirmation
}

// isAction reports whether a tool call is one of the bot's actions.
func (e *event) isAction(tc llm.ToolCall) bool {
	return slices.Contains(e.p.Actions, tc.Name) && e.s.actions.Spec(tc.Name) != nil
}

// act runs the model's action calls (answer is the model's answer, the
// final one when it returns), gives it the results and asks again,
// at most max_action_rounds rounds of calls; the round after the last is
// asked without the actions, so that it answers in words. Calls of the
// reply contract's own tools in earlier rounds (a handoff, a form) are
// kept for the final answer.
func (e *event) act(ctx context.Context, req *llm.Request, answer *llm.Response, in *Input) error {
	run, resp := &e.run, *answer
	defer func() { in.Actions, in.Confirm = run.notes, run.confirm }()
	var carried []llm.ToolCall
	usage := resp.Usage
	for round := 0; slices.ContainsFunc(resp.ToolCalls, e.isAction); round++ {
		calls := slices.Clone(resp.ToolCalls)
		for i := range calls {
			if calls[i].ID == "" {
				calls[i].ID = "call_" + strconv.Itoa(round) + "_" + strconv.Itoa(i)
			}
		}
		req.Messages = append(req.Messages, llm.Message{Role: llm.RoleAssistant, Content: resp.Content, ToolCalls: calls})
		for _, tc := range calls {
			content := prompt.ActionNoted
			if e.isAction(tc) {
				content = e.runAction(ctx, tc, run)
			} else {
				carried = append(carried, tc)
			}
			req.Messages = append(req.Messages, llm.Message{Role: llm.RoleTool, ToolCallID: tc.ID, Content: content})
		}
		if round+1 >= e.p.MaxActionRounds {
			req.Tools = e.withoutActions(req.Tools)
		}
		next, err := e.b.model.Complete(ctx, *req)
		if err != nil {
			*answer = next
			return err
		}
		usage.PromptTokens += next.Usage.PromptTokens
		usage.CompletionTokens += next.Usage.CompletionTokens
		resp = next
	}
	resp.ToolCalls = append(carried, resp.ToolCalls...)
	resp.Usage = usage
	*answer = resp
	return nil
}

// runAction makes one action call the model asked for, or says why not,
// and returns what the model is told.
func (e *event) runAction(ctx context.Context, tc llm.ToolCall, run *actionRun) string {
	runner, spec := e.s.actions, e.s.actions.Spec(tc.Name)
	note := func(kind, told string) string {
		run.calls = append(run.calls, ActionCall{Action: tc.Name, Kind: kind, Args: tc.Arguments, Told: told})
		if runner.Observe != nil {
			runner.Observe(tc.Name, kind, 0)
		}
		return told
	}
	args, err := spec.Args(tc.Arguments)
	if err != nil {
		return note(action.KindInvalidArgs, prompt.ActionInvalid(err.Error()))
	}
	if spec.Identity && !e.verified {
		return note(action.KindUnverified, prompt.ActionUnverified(e.s.confirm.signIn))
	}
	if spec.Confirm != "" {
		if run.confirm != nil {
			return note(action.KindAwaiting, prompt.ActionOneChange())
		}
		cf := e.s.confirm
		p := action.NewPending(spec.Name, args, e.conv, e.ev.UserID, e.b.now(), cf.ttl)
		run.confirm = &Confirm{Text: spec.ConfirmText(args), Confirmation: kommbridge.Confirmation{Token: action.Sign(e.b.confirmSecret, p), Yes: cf.yes, No: cf.no}}
		return note(action.KindAwaiting, prompt.ActionAwaiting(run.confirm.Text, cf.yes, cf.no))
	}
	out := runner.Do(ctx, spec.Name, args)
	told := out.ToolContent()
	run.calls = append(run.calls, ActionCall{Action: tc.Name, Kind: out.Kind, Status: out.Status, Took: out.Took, Args: tc.Arguments, Told: told})
	run.notes = append(run.notes, out.Summary(args))
	return told
}

// withoutActions is tools without the bot's actions, in an array of its
// own.
func (e *event) withoutActions(tools []llm.Tool) []llm.Tool {
	return slices.DeleteFunc(slices.Clone(tools), func(t llm.Tool) bool { return slices.Contains(e.p.Actions, t.Name) })
}

// confirmed answers a click of a confirmation button: No changes nothing;
// Yes runs the action its token names with the token's exact arguments,
// once, whatever retries and second clicks come, and only when the token
// is ours, in time, of this conversation, bot and user, and (for an
// identity action) the user is still verified. The model then tells the user the
// outcome; when it cannot, a plain sentence does. Nobody is handed off.
func (e *event) confirmed(ctx context.Context) *Result {
	ev, cf, log := e.ev, e.s.confirm, e.b.log.With(zap.String("bot", e.p.ID), zap.String("conversation", e.conv))
	in := Input{Event: ev, Now: e.b.now(), UserTurn: ev.Text}
	plain := func(text string, cause error) *Result {
		r := e.result(Decision{Reply: reply(kommbridge.OutcomeAnswered, kommbridge.Message{Text: text}),
			Turns: in.userTurns(kommbridge.Turn{Role: llm.RoleAssistant, Text: text}), Cause: cause})
		return &r
	}
	if ev.Confirm == kommbridge.ConfirmNo {
		return plain(cf.cancelled, nil)
	}
	p, err := action.Open(e.b.confirmSecret, ev.Confirm, in.Now)
	spec := e.s.actions.Spec(p.Action)
	switch {
	case err != nil:
	case p.Conv != e.conv:
		err = fmt.Errorf("%w: from another conversation", action.ErrForged)
	case p.User != ev.UserID:
		err = fmt.Errorf("%w: pressed by another user than the one it was offered to", action.ErrForged)
	case spec == nil || !slices.Contains(e.p.Actions, p.Action):
		err = fmt.Errorf("%w: the bot has no action %q", action.ErrForged, p.Action)
	case spec.Identity && !e.verified:
		err = fmt.Errorf("%w: the user is no longer verified", action.ErrForged)
	}
	if err != nil {
		log.Warn("confirmation refused; nothing was called", zap.Error(err))
		e.noteConfirm(p.Action, action.KindBadConfirm)
		return plain(cf.invalid, nil)
	}
	key := "confirm/" + p.Nonce
	prev, claimed, err := e.b.store.Claim(e.writeCtx(ctx), key)
	switch {
	case err != nil:
		// Not known whether it ran: run nothing, and say so.
		log.Warn("confirmation not checked: the store failed; nothing was called", zap.Error(err))
		r := e.failed(ctx, storeFailure(ctx, err, "checking the confirmation"), false)
		return &r
	case !claimed:
		log.Info("confirmation pressed again; not called again", zap.String("action", p.Action))
		return plain(cf.done+" "+string(prev), nil)
	}
	args := p.Arguments()
	out := e.s.actions.Do(ctx, p.Action, args)
	summary := out.Summary(args)
	if err := e.b.store.Finish(e.writeCtx(ctx), key, []byte(summary)); err != nil {
		log.Warn("confirmation record not stored; a second click may not be told it ran", zap.Error(err))
	}
	calls := []ActionCall{{Action: p.Action, Kind: out.Kind, Status: out.Status, Took: out.Took, Args: string(p.Args), Told: out.ToolContent()}}

	// The model tells the user what happened.
	history, err := e.b.store.History(ctx, e.conv)
	if err != nil {
		history = nil
	}
	what := spec.ConfirmText(args)
	note := prompt.ActionConfirmed(cf.yes, what, out.ToolContent(), out.Err)
	in.UserTurn, in.Actions = ev.Text, []string{summary}
	req, err := e.request(in.Now, history, []llm.Part{{Text: note}}, nil)
	var r Result
	if err == nil {
		req.Tools = e.withoutActions(req.Tools)
		resp, merr := e.b.model.Complete(ctx, *req)
		if merr == nil {
			in.Asked, in.Reply = true, prompt.Parse(e.p.Format, resp)
			if in.Reply.Text != "" {
				r = e.result(e.settle(ctx, in))
				r.Usage, r.Model, r.Endpoint, r.Attempts = resp.Usage, resp.Model, resp.Endpoint, resp.Attempts
			}
		}
	}
	if r.Messages == nil {
		text := "Done."
		if out.Kind != action.KindOK {
			text = "Sorry, that did not go through: " + out.Err + "."
		}
		r = *plain(text, nil)
		r.fx.turns = in.userTurns(kommbridge.Turn{Role: llm.RoleAssistant, Text: text})
	}
	r.Actions = calls
	return &r
}

// noteConfirm counts a refused confirmation.
func (e *event) noteConfirm(name, kind string) {
	if r := e.s.actions; r != nil && r.Observe != nil && name != "" && r.Spec(name) != nil {
		r.Observe(name, kind, 0)
	}
}
