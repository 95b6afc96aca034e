package adapter

import (
	"encoding/json"
	"strconv"

	"github.com/kommbridge/kommbridge"
)

// EncodeEvent writes ev as Kommunicate posts it to the webhook: the one
// writer of that JSON (eval and the load benchmark use it), of which
// DecodeEvent is the reader. Chat context keys, attachments (files and
// locations), a form's values, the "Talk to human" flag and a click's
// replyMetadata all go where Kommunicate puts them; the channel and a
// form's secrets are not written (Kommunicate's webhook says neither).
func EncodeEvent(ev kommbridge.Event) []byte {
	w := wireEvent{
		BotID: ev.BotID, Key: ev.Key, From: ev.UserID, Message: ev.Text, GroupID: ev.ConversationID,
		EventName: ev.Name, ContentType: 0, Source: 1,
	}
	if !ev.ReceivedAt.IsZero() {
		w.CreatedAt = ev.ReceivedAt.UnixMilli()
	}
	md := map[string]any{}
	chat := map[string]any{}
	for k, v := range ev.Context {
		chat[k] = v
	}
	if len(ev.Attachments) > 0 {
		list := make([]map[string]any, len(ev.Attachments))
		for i, a := range ev.Attachments {
			if a.Type == "location" {
				list[i] = map[string]any{"type": "location", "payload": map[string]any{"lat": a.Lat, "lon": a.Lon}}
				continue
			}
			payload := map[string]any{"name": a.Name, "url": a.URL}
			if a.Size > 0 {
				payload["size"] = strconv.FormatInt(a.Size, 10)
			}
			list[i] = map[string]any{"type": a.Type, "payload": payload}
		}
		chat["attachments"] = list
		if w.EventName == "" {
			w.EventName = kommbridge.EventMedia
		}
	}
	if len(ev.Form) > 0 {
		chat["formData"] = ev.Form
		chat["formMsgKey"] = ev.Key + "-form"
	}
	if len(chat) > 0 {
		md["KM_CHAT_CONTEXT"] = chat
	}
	if ev.TalkToHuman {
		md["TALK_TO_HUMAN"] = "true"
	}
	if ev.Confirm != "" {
		md[ConfirmKey] = ev.Confirm
	}
	if ev.Clicked != "" {
		md[ClickKey] = ev.Clicked
	}
	if len(md) > 0 {
		w.Metadata = md
	}
	b, _ := json.Marshal(w) // strings, numbers, maps and slices of them
	return b
}

// wireEvent is a webhook's body as Kommunicate writes it.
type wireEvent struct {
	BotID       string         `json:"botId"`
	Key         string         `json:"key,omitempty"`
	From        string         `json:"from,omitempty"`
	Message     string         `json:"message"`
	GroupID     string         `json:"groupId"`
	Metadata    map[string]any `json:"metadata,omitempty"`
	ContentType int            `json:"contentType"`
	Source      int            `json:"source"`
	EventName   string         `json:"eventName,omitempty"`
	CreatedAt   int64          `json:"createdAt,omitempty"`
}
