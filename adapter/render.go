package adapter

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/kommbridge/kommbridge"
)

// Message is one Kommunicate chat message as a webhook answer carries it.
type Message struct {
	Message  string    `json:"message"`
	Metadata *Metadata `json:"metadata,omitempty"`
}

// Metadata holds a rich message template and the handoff control keys.
type Metadata struct {
	ContentType string  `json:"contentType,omitempty"`
	TemplateID  string  `json:"templateId,omitempty"`
	Payload     any     `json:"payload,omitempty"`
	AssignTo    *string `json:"KM_ASSIGN_TO,omitempty"`
	AssignTeam  string  `json:"KM_ASSIGN_TEAM,omitempty"`
	// ActionRequest "resolveConversation" closes the conversation as
	// resolved (Kommunicate's "Working with Actions").
	ActionRequest string `json:"actionRequest,omitempty"`
}

// resolveConversation is the action that closes a conversation as resolved.
const resolveConversation = "resolveConversation"

// Kommunicate's rich message templates.
const (
	richContentType    = "300"
	templateQuickReply = "6"
	templateLinks      = "3"
	templateMixed      = "11"
)

type quickReply struct {
	Title   string `json:"title"`
	Message string `json:"message"`
}

type linkButton struct {
	Type   string `json:"type"`
	URL    string `json:"url"`
	Name   string `json:"name"`
	NewTab bool   `json:"openLinkInNewTab"`
}

type mixedButton struct {
	Name   string      `json:"name"`
	Action mixedAction `json:"action"`
}

type mixedAction struct {
	Type    string `json:"type"`
	URL     string `json:"url,omitempty"`
	Message string `json:"message,omitempty"`
}

// Render turns a reply into Kommunicate messages: quick replies as template
// "6", links as template "3" (both together as "11"), a handoff as
// KM_ASSIGN_TO with KM_ASSIGN_TEAM when a team was chosen.
func Render(r kommbridge.Reply) []Message {
	out := make([]Message, len(r.Messages))
	for i, m := range r.Messages {
		out[i] = Message{Message: m.Text, Metadata: metadata(m)}
	}
	return out
}

func metadata(m kommbridge.Message) *Metadata {
	if len(m.QuickReplies) == 0 && len(m.Links) == 0 && m.Handoff == nil && !m.Resolve {
		return nil
	}
	md := &Metadata{}
	switch {
	case len(m.QuickReplies) > 0 && len(m.Links) > 0:
		buttons := make([]mixedButton, 0, len(m.Links)+len(m.QuickReplies))
		for _, l := range m.Links {
			buttons = append(buttons, mixedButton{Name: ButtonTitle(l.Name), Action: mixedAction{Type: "link", URL: l.URL}})
		}
		for _, q := range m.QuickReplies {
			buttons = append(buttons, mixedButton{Name: ButtonTitle(q), Action: mixedAction{Type: "quickReply", Message: q}})
		}
		md.ContentType, md.TemplateID, md.Payload = richContentType, templateMixed, buttons
	case len(m.QuickReplies) > 0:
		qs := make([]quickReply, len(m.QuickReplies))
		for i, q := range m.QuickReplies {
			qs[i] = quickReply{Title: ButtonTitle(q), Message: q}
		}
		md.ContentType, md.TemplateID, md.Payload = richContentType, templateQuickReply, qs
	case len(m.Links) > 0:
		ls := make([]linkButton, len(m.Links))
		for i, l := range m.Links {
			ls[i] = linkButton{Type: "link", URL: l.URL, Name: ButtonTitle(l.Name), NewTab: true}
		}
		md.ContentType, md.TemplateID, md.Payload = richContentType, templateLinks, ls
	}
	if m.Handoff != nil {
		assign := m.Handoff.AssignTo
		md.AssignTo = &assign
		md.AssignTeam = m.Handoff.Team
	}
	if m.Resolve {
		md.ActionRequest = resolveConversation
	}
	return md
}

// maxTitle is the button title length Kommunicate shows before cutting it.
const maxTitle = 20

// ButtonTitle is text shortened to fit a Kommunicate button; the full text
// is what a click sends.
func ButtonTitle(text string) string {
	if utf8.RuneCountInString(text) <= maxTitle {
		return text
	}
	r := []rune(text)
	return strings.TrimSpace(string(r[:maxTitle-1])) + "…"
}

// Marshal renders r as the JSON array a webhook answers with.
func Marshal(r kommbridge.Reply) []byte {
	b, _ := json.Marshal(Render(r)) // only strings, bools and slices
	return b
}
