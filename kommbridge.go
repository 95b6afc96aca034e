// Package kommbridge holds the domain types every part of kommbridge
// shares: the event a webhook carries, the turns of a conversation, and the
// reply the bridge decides on before the adapter renders it for
// Kommunicate.
package kommbridge

import (
	"strings"
	"time"
)

// Event is one webhook call from Kommunicate, decoded from whichever shape
// it arrived in.
type Event struct {
	BotID          string
	Key            string // unique id of the message; repeated on a retry
	UserID         string
	ConversationID string // Kommunicate's groupId
	Text           string
	// Name is Kommunicate's eventName: "" for an ordinary message,
	// EventWelcome, EventMedia, or a custom name.
	Name string
	// Context is the chat context (KM_CHAT_CONTEXT) with every value as
	// text; attachments and form data are taken out of it.
	Context map[string]string
	// TalkToHuman is set when the widget's "Talk to human" button sent it.
	TalkToHuman bool
	// Clicked names the kind of button whose click sent the text (its
	// replyMetadata); "" when the user typed it.
	Clicked string
	// Confirm is what a confirmation button's click carries: its signed
	// token for Yes, "no" for No; "" for anything else (a typed "yes"
	// included).
	Confirm string
	// Form holds the values of a submitted form (KM_CHAT_CONTEXT.formData),
	// field name (or label, as the widget names text inputs) to value;
	// checkbox values are joined with ", ".
	Form map[string]string
	// Secrets are the values of a form's password fields, taken out of
	// Form once the form is known: they live in this process for this
	// event only, never reaching the model, the history, a log or a
	// queued job.
	Secrets map[string]string `json:"-"`
	// Channel is where the message came from, when the webhook says
	// (one of the Channel* values); "" when it does not.
	Channel     string
	Attachments []Attachment
	ReceivedAt  time.Time
}

// Kommunicate event names.
const (
	EventWelcome = "WELCOME"
	EventMedia   = "KOMMUNICATE_MEDIA_EVENT"
)

// Language is the user's language code, else locale, from the chat context;
// "" when the widget sent neither.
func (e *Event) Language() string {
	if l := e.Context["kmUserLanguageCode"]; l != "" {
		return l
	}
	return e.Context["kmUserLocale"]
}

// Conversation is the key of the event's conversation: conversation ids
// are Kommunicate's per application, so the bot is part of it.
func (e *Event) Conversation() string { return e.BotID + "/" + e.ConversationID }

// DedupeKey is the key of the event's answer record: a retry of the
// message carries the same Key.
func (e *Event) DedupeKey() string { return e.BotID + "/" + e.Key }

// User is the key of the event's user, for per-user limits.
func (e *Event) User() string { return e.BotID + "/" + e.UserID }

// ReplyFormat is how the model is asked to answer: the reply contract's
// shape (bots[].reply_format).
type ReplyFormat string

// Reply formats.
const (
	FormatJSONSchema ReplyFormat = "json_schema" // a strict JSON schema (structured outputs)
	FormatJSONObject ReplyFormat = "json_object" // any JSON object, the contract in the prompt
	FormatTools      ReplyFormat = "tools"       // free text, handoff as a tool call
	FormatText       ReplyFormat = "text"        // free text, handoff as a marker
)

// ReplyFormats lists the reply formats, the default first.
var ReplyFormats = []ReplyFormat{FormatJSONSchema, FormatJSONObject, FormatTools, FormatText}

// Rate is a token bucket: Per events per second, bursts of Burst. A zero
// Per means no limit. In config.yaml it is written {rate, burst}.
type Rate struct {
	Per   float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// Attachment is a file or a location the user shared.
type Attachment struct {
	// Type is a MIME type such as "image/png", or "location".
	Type string
	Name string
	URL  string
	Size int64 // as Kommunicate stated it; never trusted
	Lat  float64
	Lon  float64
}

// Turn is one message of a conversation's history.
type Turn struct {
	Role string `json:"r"` // "user" or "assistant"
	Text string `json:"t"`
}

// Reply is what the bridge answers one event with. The adapter renders its
// Messages, in order, as Kommunicate messages.
type Reply struct {
	Messages []Message `json:"messages"`
	// Outcome says what happened, for logs and metrics: one of the Outcome*
	// values.
	Outcome string `json:"outcome"`
	// HandoffReason is set when the conversation was handed to people: one
	// of the Handoff* reasons.
	HandoffReason string `json:"handoff_reason,omitempty"`
	// Channel is where the user reads the answer (one of the Channel*
	// values); the adapter fits buttons to its limits.
	Channel string `json:"channel,omitempty"`
	// Offline: handed off outside the team's opening hours.
	Offline bool `json:"offline,omitempty"`
}

// Channels a conversation reaches users through.
const (
	ChannelWeb       = "web" // Kommunicate's web widget and mobile SDKs
	ChannelWhatsApp  = "whatsapp"
	ChannelMessenger = "messenger"
	ChannelInstagram = "instagram"
)

// Shows reports which rich parts a channel shows as widgets; the rest
// reach its users as text, options numbered. The web widget shows all;
// WhatsApp shows a list (an interactive list message) but no carousel and
// no form; Messenger and Instagram are taken to show none of them, since
// Kommunicate documents no mapping of its templates 7, 10 and 12 there.
func Shows(channel string) (cards, list, form bool) {
	switch channel {
	case ChannelWhatsApp:
		return false, true, false
	case ChannelMessenger, ChannelInstagram:
		return false, false, false
	}
	return true, true, true
}

// Outcomes of an event.
const (
	OutcomeAnswered  = "answered"
	OutcomeWelcome   = "welcome"
	OutcomeHandoff   = "handoff"
	OutcomeError     = "error"
	OutcomeLimited   = "limited"
	OutcomeIgnored   = "ignored"
	OutcomeSilent    = "silent"
	OutcomeDuplicate = "duplicate"
	// OutcomeHeld: the webhook answered a hold message; the answer follows
	// through Kommunicate's API.
	OutcomeHeld = "held"
)

// Reasons for a handoff.
const (
	HandoffModel         = "model"
	HandoffLowConfidence = "low_confidence"
	HandoffUserRequest   = "user_request"
	HandoffButton        = "button"
	HandoffError         = "error"
	HandoffTimeout       = "timeout"
	// HandoffRefusal: the model refused, and the bot hands refusals off.
	HandoffRefusal = "refusal"
	// HandoffContentFilter: the provider filtered the prompt or the answer,
	// and the bot hands that off.
	HandoffContentFilter = "content_filter"
	// HandoffDelivery: a held answer could not be delivered through
	// Kommunicate's API; the user was promised one.
	HandoffDelivery = "delivery_failed"
	// HandoffNotInKB: the help center has nothing that answers the
	// question, and the bot hands such questions to people
	// (knowledge.on_no_match: handoff).
	HandoffNotInKB = "not_in_kb"
	// HandoffPromise: the model's reply said a person would take over
	// without handing off, and the bot keeps such promises
	// (handoff.on_false_promise: handoff).
	HandoffPromise = "false_promise"
)

// Outcomes lists every outcome of an event; HandoffReasons every handoff
// reason (for metrics' series and eval's suite checks).
var (
	Outcomes = []string{OutcomeAnswered, OutcomeWelcome, OutcomeHandoff, OutcomeError, OutcomeLimited, OutcomeIgnored,
		OutcomeSilent, OutcomeDuplicate, OutcomeHeld, OutcomeBusy, OutcomeDegraded, OutcomeCallerGone, OutcomeFiltered,
		OutcomeTooLong, OutcomeResolved, OutcomeFormIncomplete, OutcomeJoined, OutcomeNotInKB}
	HandoffReasons = []string{HandoffModel, HandoffLowConfidence, HandoffUserRequest, HandoffButton, HandoffError,
		HandoffTimeout, HandoffRefusal, HandoffContentFilter, HandoffDelivery, HandoffNotInKB, HandoffPromise}
)

// Message is one chat message of a Reply.
type Message struct {
	Text string `json:"text"`
	// QuickReplies are suggested replies: a click sends the text as the
	// user's message.
	QuickReplies []string `json:"quick_replies,omitempty"`
	Links        []Link   `json:"links,omitempty"`
	// Handoff, when set, assigns the conversation to people.
	Handoff *Handoff `json:"handoff,omitempty"`
	// Resolve asks Kommunicate to close the conversation as resolved.
	Resolve bool `json:"resolve,omitempty"`
	// AskFile shows the widget's attach button: the bot asked for a file.
	AskFile bool `json:"ask_file,omitempty"`
	// FilesDone hides the attach button again: the file asked for came.
	FilesDone bool `json:"files_done,omitempty"`
	// Rich parts: cards, a list, images, each validated; a message carries
	// at most one kind (the adapter renders one template per message).
	Cards  []Card  `json:"cards,omitempty"`
	List   *List   `json:"list,omitempty"`
	Images []Image `json:"images,omitempty"`
	// Form asks the user for details; the answers come back as the
	// event's Form.
	Form *Form `json:"form,omitempty"`
	// HumanButton, when set, is the label of a quick reply that asks for
	// a person as the widget's Talk to human button does.
	HumanButton string `json:"human_button,omitempty"`
	// Confirm, when set, shows Yes and No buttons that confirm an action
	// (the message's text is the question).
	Confirm *Confirmation `json:"confirm,omitempty"`
	// Hidden: a note for the agents, which the user's widget does not show
	// (metadata category HIDDEN).
	Hidden bool `json:"hidden,omitempty"`
}

// Confirmation is the Yes and No of an action that changes data: Token is
// the signed offer a Yes click sends back.
type Confirmation struct {
	Token string `json:"token"`
	Yes   string `json:"yes"`
	No    string `json:"no"`
}

// ConfirmNo is what a No click sends in place of a token.
const ConfirmNo = "no"

// Card is one card of a carousel.
type Card struct {
	Title    string   `json:"title"`
	Subtitle string   `json:"subtitle,omitempty"`
	ImageURL string   `json:"image_url,omitempty"`
	Buttons  []Button `json:"buttons,omitempty"`
}

// Button is a card's or a list's button: a link when URL is set, else a
// quick reply sending Reply.
type Button struct {
	Name  string `json:"name"`
	URL   string `json:"url,omitempty"`
	Reply string `json:"reply,omitempty"`
}

// List is a list of choices under a header.
type List struct {
	Header string     `json:"header,omitempty"`
	Items  []ListItem `json:"items"`
}

// ListItem is one row of a List: a click sends Reply, or opens URL.
type ListItem struct {
	Title       string `json:"title"`
	Description string `json:"description,omitempty"`
	Reply       string `json:"reply,omitempty"`
	URL         string `json:"url,omitempty"`
}

// Image is an image shown in the chat.
type Image struct {
	URL     string `json:"url"`
	Caption string `json:"caption,omitempty"`
}

// Form is a form the widget shows; its submit posts the values back to
// the bot.
type Form struct {
	Name string `json:"name"`
	// Text is the message shown with the form.
	Text   string      `json:"text,omitempty"`
	Fields []FormField `json:"fields"`
	Submit string      `json:"submit"`
	// ShowValues makes the widget post the submitted values as visible
	// text too: a form sent with a handoff, whose post-back only the
	// people taking over read.
	ShowValues bool `json:"show_values,omitempty"`
}

// FormField is one field of a Form.
type FormField struct {
	Name        string   `json:"name"`
	Label       string   `json:"label"`
	Type        string   `json:"type"` // text, textarea, password, radio, checkbox, dropdown, hidden
	Placeholder string   `json:"placeholder,omitempty"`
	Required    bool     `json:"required,omitempty"`
	Regex       string   `json:"regex,omitempty"`
	Error       string   `json:"error,omitempty"`
	Options     []string `json:"options,omitempty"`
	Value       string   `json:"value,omitempty"` // hidden fields
}

// Link is a link button.
type Link struct {
	Name string `json:"name"`
	URL  string `json:"url"`
}

// Handoff assigns a conversation. AssignTo "" means Kommunicate's routing
// rules; Team, when set, is a Kommunicate team id.
type Handoff struct {
	AssignTo string `json:"assign_to"`
	Team     string `json:"team,omitempty"`
}

// Lock is a held conversation lock. In a shared store it is a lease the
// owner renews while it works.
type Lock interface {
	// Lost reports whether the lock may have passed to another owner (a
	// renewal failed). An owner that lost it writes no history.
	Lost() bool
	// Unlock releases the lock; calls after the first do nothing.
	Unlock()
}

// Outcomes of an event that the model did not answer in the usual way.
const (
	// OutcomeBusy: no model call slot came free within the reply budget,
	// or the budget was spent before the model could be called; the user
	// got the short busy message.
	OutcomeBusy = "busy"
	// OutcomeDegraded: answered while the shared store was unreachable,
	// without stored history.
	OutcomeDegraded = "degraded"
	// OutcomeCallerGone: the caller closed the connection before the
	// answer; it was made anyway and kept for Kommunicate's retry.
	OutcomeCallerGone = "caller_gone"
	// OutcomeFiltered: the provider's content filter withheld the prompt
	// or the answer; the user got the bot's content_filter_message.
	OutcomeFiltered = "filtered"
	// OutcomeResolved: answered, and the conversation closed as resolved
	// (bots with resolve: auto, when the model said the issue is solved).
	OutcomeResolved = "resolved"
	// OutcomeJoined: the message waited for its conversation's previous
	// one together with a newer message, which answers both in one model
	// call; this webhook's answer holds no message.
	OutcomeJoined = "joined"
	// OutcomeFormIncomplete: a form came back with required fields empty
	// (or values its checks refuse); the user was asked again, with the
	// form, without the model.
	OutcomeFormIncomplete = "form_incomplete"
	// OutcomeTooLong: the conversation and message were over the model's
	// context even with the oldest history dropped; the user got the
	// bot's too_long_message and the history was cleared.
	OutcomeTooLong = "too_long"
	// OutcomeNotInKB: nothing in the help center answers the question;
	// the user got knowledge.no_match_message with a button to ask for a
	// person, without the model (knowledge.on_no_match: message).
	OutcomeNotInKB = "not_in_kb"
)

// Queued is what a message that waited for its conversation's lock does
// once it holds it (see bridge.Store's Dequeue).
type Queued int

// What a queued message does.
const (
	// Alone: answer the message by itself (it was not in the queue).
	Alone Queued = iota
	// Answer: answer every message queued up to this one, in one call.
	Answer
	// Joined: a newer message answers this one with its own.
	Joined
)

// Gap is a question the help center did not answer, as kb gaps reports
// it: the question (lower-cased, spaces tidied), how often it was asked,
// and when last.
type Gap struct {
	Question string    `json:"question"`
	Count    int       `json:"count"`
	Last     time.Time `json:"last"`
}

// MostAsked orders gaps by count, then the most recent first, then by
// question.
func MostAsked(a, b Gap) int {
	switch {
	case a.Count != b.Count:
		return b.Count - a.Count
	case !a.Last.Equal(b.Last):
		return b.Last.Compare(a.Last)
	}
	return strings.Compare(a.Question, b.Question)
}
