// Package config loads kommbridge's YAML configuration: environment
// expansion, defaults, strict decoding and validation that reports every
// problem at once. The keys are a public interface; see docs/configuration.md.
package config

import (
	"time"

	"github.com/kommbridge/kommbridge"
)

// Config is the whole of config.yaml after defaults, environment expansion
// and validation.
type Config struct {
	Server      Server      `yaml:"server"`
	LLM         LLM         `yaml:"llm"`
	Store       Store       `yaml:"store"`
	Limits      Limits      `yaml:"limits"`
	Log         Log         `yaml:"log"`
	Bots        []Bot       `yaml:"bots"`
	Kommunicate Kommunicate `yaml:"kommunicate"`
	Media       Media       `yaml:"media"`
	Eval        Eval        `yaml:"eval"`
	// Knowledge are the help centers bots answer from.
	Knowledge []KnowledgeBase `yaml:"knowledge"`
	// Actions are calls to the business's own APIs bots may make.
	Actions       []Action      `yaml:"actions"`
	Confirmations Confirmations `yaml:"confirmations"`
	Identity      Identity      `yaml:"identity"`
	// Privacy is what personal data is masked before a model reads it.
	Privacy Privacy `yaml:"privacy"`
	// Outcomes is the record kept of each conversation's outcome.
	Outcomes Outcomes `yaml:"outcomes"`

	// Path is the file the configuration was read from; empty when it was
	// built in code.
	Path string `yaml:"-"`
}

// Server is the HTTP side: where kommbridge listens and how Kommunicate
// authenticates.
type Server struct {
	Addr        string `yaml:"addr"`
	WebhookPath string `yaml:"webhook_path"`
	Auth        Auth   `yaml:"auth"`
	// ReplyBudget is the time from a webhook's arrival to its answer,
	// retries included. It must stay under Kommunicate's 30 s wait.
	ReplyBudget  Duration `yaml:"reply_budget"`
	MaxBodyBytes int64    `yaml:"max_body_bytes"`
	// PprofAddr, when set, serves net/http/pprof on its own listener
	// (keep it on loopback).
	PprofAddr string `yaml:"pprof_addr"`
	// ShutdownGrace bounds how long a stopping server waits for in-flight
	// webhooks; zero means reply_budget.
	ShutdownGrace Duration `yaml:"shutdown_grace"`
}

// Auth is the request header Kommunicate sends with every webhook. serve
// refuses to start with an empty Value unless Disabled says, explicitly,
// that the webhook is to be open.
type Auth struct {
	Header   string `yaml:"header"`
	Value    string `yaml:"value"`
	Disabled bool   `yaml:"disabled"`
	// ValueFrom says where Value came from, for messages: "server.auth.value",
	// "${VAR}" or "KOMMBRIDGE_WEBHOOK_TOKEN"; never the value.
	ValueFrom string `yaml:"-"`
}

// LLM is the OpenAI-compatible endpoint and how it is called.
type LLM struct {
	Endpoint       `yaml:",inline"`
	MaxRetries     int        `yaml:"max_retries"`
	MaxConcurrency int        `yaml:"max_concurrency"`
	Fallbacks      []Endpoint `yaml:"fallbacks"`
	Breaker        Breaker    `yaml:"breaker"`
	// MaxResponseBytes bounds every answer read from a model endpoint (a
	// completion, a model list, a transcript); a larger one fails that
	// call.
	MaxResponseBytes int64 `yaml:"max_response_bytes"`
}

// Endpoint is one OpenAI-compatible API: the primary or a fallback.
type Endpoint struct {
	BaseURL    string  `yaml:"base_url"`
	APIKey     string  `yaml:"api_key"`
	APIType    APIType `yaml:"api_type"`
	APIVersion string  `yaml:"api_version"` // azure only
	Model      string  `yaml:"model"`
	// MaxCompletionTokens sends max_tokens as max_completion_tokens, which
	// OpenAI's reasoning models (o1, o3, gpt-5) require; most other servers
	// know only max_tokens.
	MaxCompletionTokens bool `yaml:"max_completion_tokens"`
	// Headers are sent with every request to this endpoint alone: a
	// gateway's keys and routing (Portkey's x-portkey-*, Helicone's and
	// Cloudflare AI Gateway's authentication), OpenRouter's HTTP-Referer
	// and X-Title. Values may hold ${VAR}; they are treated as secrets.
	Headers map[string]string `yaml:"headers"`
	// GatewayRetries says the endpoint is a gateway that retries by
	// itself (LiteLLM, Portkey, GOModel with retries on): kommbridge then
	// does not retry on it, so the two do not multiply.
	GatewayRetries bool `yaml:"gateway_retries"`
	// KeyFrom says where APIKey came from, for the start log and check:
	// the key's config path, "${VAR}", or "OPENAI_API_KEY"; "" when there
	// is none. Never the key.
	KeyFrom string `yaml:"-"`
	// HeadersFrom says, per header, where its value came from, as KeyFrom.
	HeadersFrom map[string]string `yaml:"-"`
}

// Breaker skips an endpoint that keeps failing. Failures consecutive
// retryable failures open it for Cooldown; zero Failures disables it.
type Breaker struct {
	Failures int      `yaml:"failures"`
	Cooldown Duration `yaml:"cooldown"`
}

// Store is where conversation history and dedupe records live.
type Store struct {
	URL              string   `yaml:"url"`
	HistoryTurns     int      `yaml:"history_turns"`
	HistoryTTL       Duration `yaml:"history_ttl"`
	DedupeTTL        Duration `yaml:"dedupe_ttl"`
	MaxConversations int      `yaml:"max_conversations"`
	// MaxDedupe bounds the answers the memory store remembers for retries;
	// past it the oldest go first (Redis keeps them for dedupe_ttl).
	MaxDedupe int `yaml:"max_dedupe"`
	// OnOutage is what a webhook gets while the shared store (Redis) is
	// unreachable: "degrade" answers from the model without stored history
	// (dedupe and order kept within each replica), "error" applies the
	// bot's error policy.
	OnOutage OnOutage `yaml:"on_outage"`
	// Lease is how long a conversation lock or an in-flight dedupe claim
	// outlives a replica that died holding it (Redis store); the owner
	// renews it every lease/3 while it works.
	Lease Duration `yaml:"lease"`
}

// Limits are the rate limits applied before the model is called.
type Limits struct {
	Conversation kommbridge.Rate `yaml:"conversation"`
	User         kommbridge.Rate `yaml:"user"`
	Global       kommbridge.Rate `yaml:"global"`
	Message      string          `yaml:"message"`
	// BusyMessage is the answer when no model call slot comes free within
	// the reply budget (llm.max_concurrency): a burst, not a failure, so
	// nobody is handed off.
	BusyMessage string `yaml:"busy_message"`
	// MaxMessageChars bounds the text of one message, as the model reads
	// it and as history keeps it (a long paste would otherwise go with
	// every later request of the conversation).
	MaxMessageChars int `yaml:"max_message_chars"`
}

// Log configures the zap logger.
type Log struct {
	Level  LogLevel  `yaml:"level"`
	Format LogFormat `yaml:"format"`
	// Content logs message text and keys; off by default.
	Content bool `yaml:"content"`
}

// Kommunicate is Kommunicate's REST API, used to deliver answers after the
// webhook's window.
type Kommunicate struct {
	APIBase string `yaml:"api_base"`
	APIKey  string `yaml:"api_key"`
	// TakeoverAfter is how long a held answer of a replica that stopped
	// waits before another replica (Redis store) delivers it.
	TakeoverAfter Duration `yaml:"takeover_after"`
}

// Media says how attachments are read.
type Media struct {
	MaxBytes           int64    `yaml:"max_bytes"`
	AllowedHosts       []string `yaml:"allowed_hosts"`
	InlineImages       bool     `yaml:"inline_images"`
	MaxDocumentChars   int      `yaml:"max_document_chars"`
	TranscribeAudio    bool     `yaml:"transcribe_audio"`
	TranscriptionModel string   `yaml:"transcription_model"`
	FetchTimeout       Duration `yaml:"fetch_timeout"`
	// MaxAttachments are read per event; the rest are named to the model
	// as skipped.
	MaxAttachments int `yaml:"max_attachments"`
	// MaxTotalBytes bounds the bytes fetched for one event, all of its
	// attachments together.
	MaxTotalBytes int64 `yaml:"max_total_bytes"`
	// MaxParallelFetches bounds one event's fetches in flight at once.
	MaxParallelFetches int `yaml:"max_parallel_fetches"`
}

// Bot is one bot profile, picked by the webhook's botId; ID "*" is the
// default profile.
type Bot struct {
	ID               string           `yaml:"id"`
	Model            string           `yaml:"model"`
	Temperature      *float32         `yaml:"temperature"`
	MaxTokens        int              `yaml:"max_tokens"`
	SystemPrompt     string           `yaml:"system_prompt"`
	SystemPromptFile string           `yaml:"system_prompt_file"`
	ReplyFormat      Format           `yaml:"reply_format"`
	Welcome          Welcome          `yaml:"welcome"`
	SuggestedReplies SuggestedReplies `yaml:"suggested_replies"`
	Handoff          Handoff          `yaml:"handoff"`
	LinkButtons      bool             `yaml:"link_buttons"`
	// Vision says the model can see images; unset means it can.
	Vision *bool `yaml:"vision"`
	// Async answers slowly after a hold message, through Kommunicate's API.
	Async Async `yaml:"async"`
	// Events maps a custom Kommunicate event name to the prompt the model
	// answers when it arrives (a template).
	Events map[string]string `yaml:"events"`
	// ImageDetail is the vision detail level: auto, low or high; "" = auto.
	ImageDetail ImageDetail `yaml:"image_detail"`
	// ContentFilterMessage is the answer when the provider's content filter
	// withholds the prompt or the answer.
	ContentFilterMessage string `yaml:"content_filter_message"`
	// TooLongMessage is the answer when the message does not fit the
	// model's context even with the oldest history dropped.
	TooLongMessage string `yaml:"too_long_message"`
	// Resolve: "auto" lets the model close a conversation as resolved when
	// the user's issue is solved and the user confirmed it; "never".
	Resolve Resolve `yaml:"resolve"`
	// Channel is where the bot's users read its answers: auto (from the
	// webhook, else the web widget), web, whatsapp, messenger or
	// instagram. Buttons are fitted to the channel's limits.
	Channel Channel `yaml:"channel"`
	// Rich lists the rich answers the model may give: cards, lists,
	// images. Not in the text reply format.
	Rich []RichKind `yaml:"rich"`
	// AskForFiles lets the model open the widget's attach button when it
	// asks for a file.
	AskForFiles bool `yaml:"ask_for_files"`
	// Forms are forms the bot can show (Kommunicate template 12), by name.
	Forms map[string]Form `yaml:"forms"`
	// Knowledge makes the bot answer from a help center.
	Knowledge *BotKnowledge `yaml:"knowledge"`
	// Actions are the actions (by name) the bot may call, at most
	// MaxActionRounds rounds of calls per message.
	Actions         []string `yaml:"actions"`
	MaxActionRounds int      `yaml:"max_action_rounds"`
}

// Form is a form a bot can show; the values come back as a message.
type Form struct {
	// Text is the message shown with the form.
	Text   string      `yaml:"text"`
	Submit string      `yaml:"submit"` // the submit button's label; "Submit" when unset
	Fields []FormField `yaml:"fields"`
}

// FormField is one field of a form.
type FormField struct {
	Name        string    `yaml:"name"`
	Label       string    `yaml:"label"`
	Type        FieldType `yaml:"type"` // text (default), textarea, password, radio, checkbox, dropdown, hidden
	Placeholder string    `yaml:"placeholder"`
	Required    bool      `yaml:"required"`
	Regex       string    `yaml:"regex"`
	Error       string    `yaml:"error"`
	Options     []string  `yaml:"options"`
	Value       string    `yaml:"value"`
}

// Eval configures `kommbridge eval`: the judge and the prices.
type Eval struct {
	// Judge is the endpoint that grades judge expectations; unset, the
	// primary endpoint (llm) does.
	Judge *Endpoint `yaml:"judge"`
	// Prices are dollars per million tokens, by model, for the estimated
	// cost.
	Prices map[string]Price `yaml:"prices"`
}

// Price is a model's price in dollars per million tokens.
type Price struct {
	Input  float64 `yaml:"input"`
	Output float64 `yaml:"output"`
}

// Hours are when people answer handed-off conversations.
type Hours struct {
	// TimeZone is an IANA zone such as "Europe/Berlin"; "UTC" when unset.
	TimeZone string `yaml:"time_zone"`
	// Weekly maps days ("mon", "mon-fri", "sat,sun") to opening times
	// ("09:00-17:00", "09:00-12:00, 13:00-17:00", or "closed").
	Weekly map[string]string `yaml:"weekly"`
	// Holidays are closed dates, "2026-12-25".
	Holidays []string `yaml:"holidays"`
}

// Async lets a slow model answer after the webhook's window: at HoldAfter
// the webhook answers HoldMessage, and the model's answer is posted into
// the conversation through Kommunicate's REST API when it is ready, at
// most MaxWait after the message arrived.
type Async struct {
	Enabled     bool     `yaml:"enabled"`
	HoldAfter   Duration `yaml:"hold_after"`
	HoldMessage string   `yaml:"hold_message"`
	MaxWait     Duration `yaml:"max_wait"`
}

// Welcome is the greeting sent on the WELCOME event.
type Welcome struct {
	Text             string   `yaml:"text"`
	SuggestedReplies []string `yaml:"suggested_replies"`
}

// SuggestedReplies bounds the quick replies taken from the model.
type SuggestedReplies struct {
	// Max is the most quick replies shown; 0 shows none. Unset means 3.
	Max *int `yaml:"max"`
}

// Handoff says when and how a conversation goes to people.
type Handoff struct {
	MinConfidence      *float64 `yaml:"min_confidence"`
	MinTokenConfidence float64  `yaml:"min_token_confidence"`
	AssignTo           string   `yaml:"assign_to"`
	// AssignToBot says AssignTo names another bot: a user's own request
	// for a person (the Talk to human button, a handoff phrase) then goes
	// to Kommunicate's routing rules, which also re-arms the widget's
	// button; the other handoffs go to that bot.
	AssignToBot  bool              `yaml:"assign_to_bot"`
	Teams        map[string]string `yaml:"teams"`
	Message      string            `yaml:"message"`
	Phrases      []string          `yaml:"phrases"`
	OnError      OnError           `yaml:"on_error"`
	ErrorMessage string            `yaml:"error_message"`
	IncludeReply bool              `yaml:"include_reply"`
	After        After             `yaml:"after"`
	// OnRefusal: after showing a model's refusal, "answer" (stay) or
	// "handoff".
	OnRefusal OnRefusal `yaml:"on_refusal"`
	// OnContentFilter: after the content filter message, "message" (stay)
	// or "handoff".
	OnContentFilter OnContentFilter `yaml:"on_content_filter"`
	Cooldown        Duration        `yaml:"cooldown"`
	// Form is a form (bots[].forms) sent with every handoff message.
	Form string `yaml:"form"`
	// Hours are the team's opening hours; outside them a handoff still
	// assigns, and the user gets OfflineMessage (and OfflineForm).
	Hours          *Hours `yaml:"hours"`
	OfflineMessage string `yaml:"offline_message"`
	OfflineForm    string `yaml:"offline_form"`
	// Summary is the note for the agent posted on every handoff.
	Summary Summary `yaml:"summary"`
	// OnFalsePromise is what a reply that promises a person without
	// handing off gets; PromisePhrases add to DefaultPromisePhrases.
	OnFalsePromise FalsePromise `yaml:"on_false_promise"`
	PromisePhrases []string     `yaml:"promise_phrases"`
}

// Duration is a time.Duration written as "25s" in YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
