package adapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kommbridge/kommbridge"
)

// webhook is the JSON body of a Kommunicate webhook call: only the fields
// kommbridge reads, each accepting every type seen in real traffic. Every
// other field (contentType, applicationKey, source, createdAt, ...) is
// ignored, whatever its type, so that a change nobody reads cannot make a
// webhook a 400. The channel is not read from it: Kommunicate documents
// source only as web or mobile, so a bot's channel setting decides.
type webhook struct {
	BotID     flexString      `json:"botId"`
	Key       flexString      `json:"key"`
	From      flexString      `json:"from"`
	Message   flexString      `json:"message"`
	GroupID   flexString      `json:"groupId"`
	Metadata  json.RawMessage `json:"metadata"`
	EventName flexString      `json:"eventName"`
}

// flexString is a JSON string or number (or null), kept as text.
type flexString string

var stringType = reflect.TypeFor[string]()

func (s *flexString) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) == 0:
		return nil
	case b[0] == '"':
		v, err := unquote(b)
		if err != nil {
			return err
		}
		*s = flexString(v)
	case b[0] == 'n':
		*s = ""
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		*s = flexString(b)
	default:
		kind := "an object"
		switch b[0] {
		case 't', 'f':
			kind = "a boolean"
		case '[':
			kind = "an array"
		}
		return &json.UnmarshalTypeError{Value: kind, Type: stringType}
	}
	return nil
}

// BadRequest is a webhook body kommbridge cannot take; its text says why.
type BadRequest struct{ Reason string }

func (e *BadRequest) Error() string { return e.Reason }

// DecodeEvent reads a webhook body. The error is a *BadRequest saying what
// was wrong.
func DecodeEvent(body []byte, received time.Time) (kommbridge.Event, error) {
	var w webhook
	if err := json.Unmarshal(body, &w); err != nil {
		return kommbridge.Event{}, &BadRequest{Reason: describeJSONError(body, err)}
	}
	switch {
	case w.BotID == "" && w.GroupID == "":
		return kommbridge.Event{}, &BadRequest{Reason: "missing botId and groupId: is this a Kommunicate webhook?"}
	case w.BotID == "":
		return kommbridge.Event{}, &BadRequest{Reason: "missing botId"}
	case w.GroupID == "":
		return kommbridge.Event{}, &BadRequest{Reason: "missing groupId"}
	}
	ev := kommbridge.Event{
		BotID:          string(w.BotID),
		Key:            string(w.Key),
		UserID:         string(w.From),
		ConversationID: string(w.GroupID),
		Text:           string(w.Message),
		Name:           string(w.EventName),
		ReceivedAt:     received,
	}
	decodeMetadata(w.Metadata, &ev)
	return ev, nil
}

func describeJSONError(body []byte, err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return "empty body: expected a JSON object"
	case errors.As(err, &te) && te.Field != "":
		return fmt.Sprintf("%s: must be a string or a number, not %s", te.Field, te.Value)
	case errors.As(err, &te):
		return fmt.Sprintf("body must be a JSON object, not %s", jsonKind(te.Value))
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	}
	return "malformed JSON: " + err.Error()
}

func jsonKind(v string) string {
	switch v {
	case "array":
		return "an array"
	case "string", "number":
		return "a " + v
	case "bool":
		return "a boolean"
	}
	return v
}

// decodeMetadata takes what the bridge needs from metadata: the chat
// context, attachments and the "Talk to human" flag. Metadata that is not
// an object, or a chat context that does not parse, is ignored: the user's
// message matters more than its decorations.
func decodeMetadata(raw json.RawMessage, ev *kommbridge.Event) {
	var md struct {
		TalkToHuman  json.RawMessage `json:"TALK_TO_HUMAN"`
		ChatContext  json.RawMessage `json:"KM_CHAT_CONTEXT"`
		TriggerEvent flexString      `json:"KM_TRIGGER_EVENT"`
		Clicked      flexString      `json:"kommbridge_button"`  // ClickKey
		Confirm      flexString      `json:"kommbridge_confirm"` // ConfirmKey
	}
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &md) != nil {
		return
	}
	if len(md.TalkToHuman) > 0 {
		ev.TalkToHuman = strings.EqualFold(strings.Trim(string(md.TalkToHuman), `"`), "true")
	}
	if name := strings.TrimSpace(string(md.TriggerEvent)); name != "" && eventText(ev.Text, name) {
		// An event a website triggered the documented way: a hidden
		// message "Event: <NAME>". It is event NAME; its text is not the
		// user's words. The widget also copies KM_TRIGGER_EVENT onto a
		// message the user typed: that stays a message, its words kept.
		ev.Name, ev.Text = name, ""
	}
	ev.Clicked = string(md.Clicked)
	ev.Confirm = strings.TrimSpace(string(md.Confirm))
	ctx := objectOrString(md.ChatContext)
	if len(ctx) == 0 {
		return
	}
	ev.Context = make(map[string]string, len(ctx))
	for k, v := range ctx {
		switch k {
		case "attachments":
			ev.Attachments = decodeAttachments(v)
		case "formData":
			ev.Form = decodeForm(v)
		case "formMsgKey":
		default:
			ev.Context[k] = text(v)
		}
	}
}

// decodeForm reads a form post-back's formData: an object (or a string
// holding one) of field names to values, a checkbox's value an array.
func decodeForm(raw json.RawMessage) map[string]string {
	fields := objectOrString(raw)
	if len(fields) == 0 {
		return nil
	}
	out := make(map[string]string, len(fields))
	for k, v := range fields {
		var list []json.RawMessage
		if len(v) > 0 && v[0] == '[' && json.Unmarshal(v, &list) == nil {
			parts := make([]string, 0, len(list))
			for _, item := range list {
				if t := text(item); t != "" {
					parts = append(parts, t)
				}
			}
			out[k] = strings.Join(parts, ", ")
			continue
		}
		out[k] = text(v)
	}
	return out
}

// objectOrString decodes an object, or a string holding one.
func objectOrString(raw json.RawMessage) map[string]json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil
		}
		raw = json.RawMessage(s)
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// unquote decodes a JSON string; one without escapes is taken as it stands.
func unquote(b []byte) (string, error) {
	if len(b) >= 2 && bytes.IndexByte(b, '\\') < 0 && utf8.Valid(b) {
		return string(b[1 : len(b)-1]), nil
	}
	var v string
	err := json.Unmarshal(b, &v)
	return v, err
}

// text is a JSON value as text: strings unquoted, the rest as written.
func text(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		if s, err := unquote(raw); err == nil {
			return s
		}
	}
	if string(raw) == "null" {
		return ""
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return b.String()
	}
	return string(raw)
}

type wireAttachment struct {
	Type    string `json:"type"`
	Payload struct {
		Name string          `json:"name"`
		URL  string          `json:"url"`
		Size json.RawMessage `json:"size"`
		Lat  json.RawMessage `json:"lat"`
		Lon  json.RawMessage `json:"lon"`
	} `json:"payload"`
}

// decodeAttachments reads KM_CHAT_CONTEXT.attachments, skipping entries
// that carry nothing usable.
func decodeAttachments(raw json.RawMessage) []kommbridge.Attachment {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	var out []kommbridge.Attachment
	for _, item := range list {
		var w wireAttachment
		if json.Unmarshal(item, &w) != nil {
			continue
		}
		a := kommbridge.Attachment{Type: strings.ToLower(strings.TrimSpace(w.Type)), Name: w.Payload.Name, URL: w.Payload.URL}
		if n, ok := num(w.Payload.Size); ok {
			a.Size = int64(n)
		}
		if a.Type == "location" {
			lat, ok1 := num(w.Payload.Lat)
			lon, ok2 := num(w.Payload.Lon)
			if !ok1 || !ok2 {
				continue
			}
			a.Lat, a.Lon = lat, lon
		} else if a.URL == "" {
			continue
		}
		if a.Name == "" && a.URL != "" {
			a.Name = nameFromURL(a.URL)
		}
		out = append(out, a)
	}
	return out
}

func num(raw json.RawMessage) (float64, bool) {
	s := strings.TrimSpace(strings.Trim(string(raw), `"`))
	if s == "" || s == "null" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

func nameFromURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	return u[strings.LastIndexByte(u, '/')+1:]
}

// eventText reports whether a message carrying KM_TRIGGER_EVENT name is
// the event itself: no text, or the hidden "Event: NAME" text.
func eventText(text, name string) bool {
	t := strings.TrimSpace(text)
	if t == "" {
		return true
	}
	const prefix = "event:"
	return len(t) > len(prefix) && strings.EqualFold(t[:len(prefix)], prefix) && strings.EqualFold(strings.TrimSpace(t[len(prefix):]), name)
}
