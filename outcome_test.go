package kommbridge_test

import (
	"testing"
	"time"

	"github.com/kommbridge/kommbridge"
)

// A conversation's outcome across resolve, reopen, handoff and silence.
func TestConversationOutcomes(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	window := 30 * time.Minute
	for _, tt := range []struct {
		name    string
		steps   []kommbridge.Step
		decided []string // what each step decides
		at      time.Time
		outcome string
	}{
		{"answered, then silence: resolved by the bot", []kommbridge.Step{{At: at(0), User: true, Answered: true}},
			[]string{""}, at(31), kommbridge.ConvResolved},
		{"inside the window: still open", []kommbridge.Step{{At: at(0), User: true, Answered: true}}, []string{""}, at(10), ""},
		{"resolved, then the user writes again: reopened, then handed off", []kommbridge.Step{
			{At: at(0), User: true, Answered: true, Resolved: true}, {At: at(5), User: true, Answered: true}, {At: at(6), User: true, HandoffReason: kommbridge.HandoffUserRequest}},
			[]string{kommbridge.ConvResolved, kommbridge.ConvReopened, kommbridge.ConvCustomerRequest}, at(60), kommbridge.ConvCustomerRequest},
		{"a handoff out of hours", []kommbridge.Step{{At: at(0), User: true, HandoffReason: kommbridge.HandoffModel, Offline: true}},
			[]string{kommbridge.ConvOutOfHours}, at(1), kommbridge.ConvOutOfHours},
		{"not in the help center: missing knowledge, counted once", []kommbridge.Step{
			{At: at(0), User: true, HandoffReason: kommbridge.HandoffNotInKB}, {At: at(1), User: true, HandoffReason: kommbridge.HandoffButton}},
			[]string{kommbridge.ConvMissingKnowledge, ""}, at(2), kommbridge.ConvMissingKnowledge},
		{"the model failed", []kommbridge.Step{{At: at(0), User: true, HandoffReason: kommbridge.HandoffTimeout}}, []string{kommbridge.ConvModelFailure}, at(1), kommbridge.ConvModelFailure},
		{"opened, never written: abandoned", []kommbridge.Step{{At: at(0), Answered: true}}, []string{""}, at(31), kommbridge.ConvAbandoned},
		{"the user's last message unanswered: open", []kommbridge.Step{{At: at(0), User: true, Answered: true}, {At: at(2), User: true}}, []string{"", ""}, at(60), ""},
	} {
		var r kommbridge.ConvRecord
		for i, s := range tt.steps {
			if got := r.Apply(s); got != tt.decided[i] {
				t.Errorf("%s: step %d decided %q, want %q", tt.name, i, got, tt.decided[i])
			}
		}
		if got := r.Outcome(tt.at, window); got != tt.outcome {
			t.Errorf("%s: outcome %q, want %q", tt.name, got, tt.outcome)
		}
	}
}
