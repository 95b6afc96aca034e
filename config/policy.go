package config

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/kommbridge/kommbridge"
)

// Policy words: each key whose value is one word of a fixed set has a type
// of its own, with the words as constants and a YAML decoder that refuses
// any other word at its line. Consumers compare the constants; the empty
// value means the key was left out (applyDefaults sets the default).

// word decodes n into out when it is one of words.
func word[T ~string](n *yaml.Node, out *T, words ...T) error {
	v := T(n.Value)
	if n.Kind != yaml.ScalarNode || !slices.Contains(words, v) {
		s := make([]string, len(words))
		for i, w := range words {
			s[i] = string(w)
		}
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d col %d: must be %s; got %q", n.Line, n.Column, strings.Join(s, ", "), n.Value)}}
	}
	*out = v
	return nil
}

// Format is a bot's reply format (bots[].reply_format).
type Format kommbridge.ReplyFormat

// UnmarshalYAML refuses a word that is not a reply format.
func (f *Format) UnmarshalYAML(n *yaml.Node) error {
	return word(n, f, Format(kommbridge.FormatJSONSchema), Format(kommbridge.FormatJSONObject), Format(kommbridge.FormatTools), Format(kommbridge.FormatText))
}

// APIType is how an endpoint is called (api_type).
type APIType string

// API types.
const (
	APIOpenAI APIType = "openai" // OpenAI and every compatible server
	APIAzure  APIType = "azure"  // Azure OpenAI: deployments, api-version
)

// UnmarshalYAML refuses another word.
func (t *APIType) UnmarshalYAML(n *yaml.Node) error { return word(n, t, APIOpenAI, APIAzure) }

// OnError is what a model failure does (handoff.on_error).
type OnError string

// On a model failure.
const (
	OnErrorHandoff OnError = "handoff" // the error message, then a handoff
	OnErrorMessage OnError = "message" // the error message alone
)

// UnmarshalYAML refuses another word.
func (p *OnError) UnmarshalYAML(n *yaml.Node) error {
	return word(n, p, OnErrorHandoff, OnErrorMessage)
}

// After is what the bot does once a conversation was handed off
// (handoff.after).
type After string

// After a handoff.
const (
	AfterAnswer After = "answer" // keep answering
	AfterSilent After = "silent" // answer nothing until a new conversation
)

// UnmarshalYAML refuses another word.
func (p *After) UnmarshalYAML(n *yaml.Node) error { return word(n, p, AfterAnswer, AfterSilent) }

// OnRefusal is what follows a model's refusal (handoff.on_refusal).
type OnRefusal string

// After a refusal.
const (
	OnRefusalAnswer  OnRefusal = "answer"
	OnRefusalHandoff OnRefusal = "handoff"
)

// UnmarshalYAML refuses another word.
func (p *OnRefusal) UnmarshalYAML(n *yaml.Node) error {
	return word(n, p, OnRefusalAnswer, OnRefusalHandoff)
}

// OnContentFilter is what follows the content filter message
// (handoff.on_content_filter).
type OnContentFilter string

// After the content filter message.
const (
	OnFilterMessage OnContentFilter = "message"
	OnFilterHandoff OnContentFilter = "handoff"
)

// UnmarshalYAML refuses another word.
func (p *OnContentFilter) UnmarshalYAML(n *yaml.Node) error {
	return word(n, p, OnFilterMessage, OnFilterHandoff)
}

// Resolve says whether the model may close a conversation as resolved
// (bots[].resolve).
type Resolve string

// Resolve policies.
const (
	ResolveAuto  Resolve = "auto"
	ResolveNever Resolve = "never"
)

// UnmarshalYAML refuses another word.
func (p *Resolve) UnmarshalYAML(n *yaml.Node) error { return word(n, p, ResolveAuto, ResolveNever) }

// Channel is where a bot's users read it (bots[].channel).
type Channel string

// ChannelAuto: the web widget (Kommunicate's webhook does not say).
const ChannelAuto Channel = "auto"

// UnmarshalYAML refuses another word.
func (p *Channel) UnmarshalYAML(n *yaml.Node) error {
	return word(n, p, ChannelAuto, kommbridge.ChannelWeb, kommbridge.ChannelWhatsApp, kommbridge.ChannelMessenger, kommbridge.ChannelInstagram)
}

// OnOutage is what a webhook gets while the shared store is unreachable
// (store.on_outage).
type OnOutage string

// Outage policies.
const (
	OnOutageDegrade OnOutage = "degrade" // answer without stored history
	OnOutageError   OnOutage = "error"   // the bot's error policy
)

// UnmarshalYAML refuses another word.
func (p *OnOutage) UnmarshalYAML(n *yaml.Node) error {
	return word(n, p, OnOutageDegrade, OnOutageError)
}

// LogLevel is log.level.
type LogLevel string

// UnmarshalYAML refuses another word.
func (p *LogLevel) UnmarshalYAML(n *yaml.Node) error {
	return word(n, p, "debug", "info", "warn", "error")
}

// LogFormat is log.format.
type LogFormat string

// Log formats.
const (
	LogJSON    LogFormat = "json"
	LogConsole LogFormat = "console"
)

// UnmarshalYAML refuses another word.
func (p *LogFormat) UnmarshalYAML(n *yaml.Node) error { return word(n, p, LogJSON, LogConsole) }

// ImageDetail is the vision detail level (bots[].image_detail).
type ImageDetail string

// UnmarshalYAML refuses another word.
func (p *ImageDetail) UnmarshalYAML(n *yaml.Node) error {
	return word(n, p, "auto", "low", "high")
}

// RichKind is a rich answer a bot allows (bots[].rich).
type RichKind string

// UnmarshalYAML refuses another word.
func (p *RichKind) UnmarshalYAML(n *yaml.Node) error {
	return word(n, p, "cards", "lists", "images")
}

// FieldType is a form field's type (bots[].forms.*.fields[].type).
type FieldType string

// UnmarshalYAML refuses another word.
func (p *FieldType) UnmarshalYAML(n *yaml.Node) error {
	return word(n, p, "text", "textarea", "password", "hidden", "radio", "checkbox", "dropdown")
}
