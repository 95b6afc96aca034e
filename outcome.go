package kommbridge

import "time"

// Conversation outcomes: what became of a conversation, as the report and
// kommbridge_conversations_total count them. A conversation is resolved
// by the bot when the bot closed it as resolved, or when no handoff and no
// new user message came within the resolve window after the bot's last
// answer; a handoff counts by its category.
const (
	ConvResolved         = "resolved"
	ConvCustomerRequest  = "customer_request"  // the user asked for a person (button, phrase)
	ConvMissingKnowledge = "missing_knowledge" // the bot could not answer (help center, model, confidence, a refusal or filter)
	ConvModelFailure     = "model_failure"     // the model failed or the answer could not be delivered
	ConvOutOfHours       = "out_of_hours"      // handed off while the team was away
	ConvReopened         = "reopened"          // the user wrote again after the bot resolved it
	ConvAbandoned        = "abandoned"         // opened, but the user never wrote
)

// ConversationOutcomes lists the outcomes, for metrics' labels.
var ConversationOutcomes = []string{ConvResolved, ConvCustomerRequest, ConvMissingKnowledge, ConvModelFailure, ConvOutOfHours, ConvReopened, ConvAbandoned}

// HandoffCategory is the outcome category of a handoff's reason.
func HandoffCategory(reason string, offline bool) string {
	switch {
	case offline:
		return ConvOutOfHours
	case reason == HandoffButton || reason == HandoffUserRequest:
		return ConvCustomerRequest
	case reason == HandoffError || reason == HandoffTimeout || reason == HandoffDelivery:
		return ConvModelFailure
	}
	return ConvMissingKnowledge
}

// ConvRecord is the outcome record of one conversation.
type ConvRecord struct {
	Conversation string    `json:"conversation"`
	Bot          string    `json:"bot"`
	Started      time.Time `json:"started"`
	// UserMessages counts the user's messages; LastUser and LastBot are
	// the user's last message and the bot's last answer.
	UserMessages int       `json:"user_messages"`
	FirstAnswer  time.Time `json:"first_answer,omitzero"`
	LastUser     time.Time `json:"last_user,omitzero"`
	LastBot      time.Time `json:"last_bot,omitzero"`
	HandoffAt    time.Time `json:"handoff_at,omitzero"`
	Category     string    `json:"category,omitempty"`
	ResolvedAt   time.Time `json:"resolved_at,omitzero"`
	Reopened     int       `json:"reopened,omitempty"`
	// Counted is the final outcome counted by the sweep (an implicit
	// resolution, an abandonment), so that it is counted once.
	Counted string `json:"counted,omitempty"`
}

// Step is what one event did to its conversation.
type Step struct {
	At  time.Time
	Bot string
	// User: a message of the user's (not WELCOME); Answered: the bot
	// answered it (or greeted).
	User, Answered bool
	// HandoffReason and Offline: the event handed off; Resolved: the bot
	// closed the conversation as resolved.
	HandoffReason string
	Offline       bool
	Resolved      bool
}

// Apply records s and returns the outcome it decides now, if any: a
// handoff's category (the conversation's first), a resolution, a reopening.
func (r *ConvRecord) Apply(s Step) string {
	if r.Started.IsZero() {
		r.Started, r.Bot = s.At, s.Bot
	}
	decided := ""
	if s.User {
		r.UserMessages++
		r.LastUser = s.At
		if !r.ResolvedAt.IsZero() && r.HandoffAt.IsZero() {
			r.Reopened++
			r.ResolvedAt = time.Time{}
			decided = ConvReopened
		}
	}
	if s.Answered {
		if r.FirstAnswer.IsZero() {
			r.FirstAnswer = s.At
		}
		r.LastBot = s.At
	}
	switch {
	case s.HandoffReason != "" && r.HandoffAt.IsZero():
		r.HandoffAt, r.Category = s.At, HandoffCategory(s.HandoffReason, s.Offline)
		decided = r.Category
	case s.Resolved && r.HandoffAt.IsZero():
		r.ResolvedAt = s.At
		decided = ConvResolved
	}
	return decided
}

// Outcome is the record's outcome at now: a handoff's category, resolved
// (explicitly, or no handoff and nothing new within window after the
// bot's last answer), abandoned (opened, the user never wrote, the window
// passed), or "" while it is still open.
func (r *ConvRecord) Outcome(now time.Time, window time.Duration) string {
	switch {
	case !r.HandoffAt.IsZero():
		return r.Category
	case !r.ResolvedAt.IsZero():
		return ConvResolved
	case r.UserMessages == 0 && now.Sub(r.Started) > window:
		return ConvAbandoned
	case r.UserMessages > 0 && !r.LastBot.IsZero() && !r.LastBot.Before(r.LastUser) && now.Sub(r.LastBot) > window:
		return ConvResolved
	}
	return ""
}
