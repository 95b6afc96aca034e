package adapter

import (
	"encoding/json"

	"github.com/kommbridge/kommbridge"
)

// Message is one Kommunicate chat message as a webhook answer carries it.
type Message struct {
	Message  string    `json:"message"`
	Metadata *Metadata `json:"metadata,omitempty"`
}

// Metadata holds a rich message template and the control keys.
type Metadata struct {
	ContentType string  `json:"contentType,omitempty"`
	TemplateID  string  `json:"templateId,omitempty"`
	Payload     any     `json:"payload,omitempty"`
	AssignTo    *string `json:"KM_ASSIGN_TO,omitempty"`
	AssignTeam  string  `json:"KM_ASSIGN_TEAM,omitempty"`
	// ActionRequest "resolveConversation" closes the conversation as
	// resolved (Kommunicate's "Working with Actions").
	ActionRequest string `json:"actionRequest,omitempty"`
	// EnableAttachment shows the widget's attach button.
	EnableAttachment bool `json:"KM_ENABLE_ATTACHMENT,omitempty"`
}

// resolveConversation is the action that closes a conversation as resolved.
const resolveConversation = "resolveConversation"

// ClickKey is the replyMetadata key kommbridge's quick replies carry: a
// click sends it back in the message's metadata, telling it from typing.
const ClickKey = "kommbridge_button"

// Kommunicate's rich message templates.
const (
	richContentType    = "300"
	templateLinks      = "3"
	templateQuickReply = "6"
	templateList       = "7"
	templateImages     = "9"
	templateCards      = "10"
	templateMixed      = "11"
	templateForm       = "12"
)

type quickReply struct {
	Title         string     `json:"title"`
	Message       string     `json:"message"`
	ReplyMetadata *clickMeta `json:"replyMetadata,omitempty"`
}

// clickMeta is the replyMetadata of kommbridge's quick replies.
type clickMeta struct {
	Button string `json:"kommbridge_button"` // ClickKey
}

var quickReplyClick = &clickMeta{Button: "quick_reply"}

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

// Render turns a reply into Kommunicate messages, each fitted to the
// reply's channel: a message's text with its buttons (quick replies as
// template "6", links as "3", both as "11") and control keys (a handoff as
// KM_ASSIGN_TO with KM_ASSIGN_TEAM when a team was chosen, the resolve
// action, the attach button), then its cards ("10"), list ("7"), images
// ("9") and form ("12"), one message each.
func Render(r kommbridge.Reply) []Message {
	ch := channelOf(r.Channel)
	out := make([]Message, 0, len(r.Messages))
	for _, m := range r.Messages {
		out = append(out, Message{Message: m.Text, Metadata: ch.metadata(m)})
		if len(m.Cards) > 0 {
			out = append(out, Message{Metadata: rich(templateCards, cards(m.Cards))})
		}
		if m.List != nil {
			out = append(out, Message{Metadata: rich(templateList, list(m.List, ch.listTitle))})
		}
		if len(m.Images) > 0 {
			out = append(out, Message{Metadata: rich(templateImages, images(m.Images))})
		}
		if m.Form != nil {
			out = append(out, Message{Message: m.Form.Text, Metadata: rich(templateForm, form(m.Form))})
		}
	}
	return out
}

func rich(template string, payload any) *Metadata {
	return &Metadata{ContentType: richContentType, TemplateID: template, Payload: payload}
}

func (ch channel) metadata(m kommbridge.Message) *Metadata {
	if len(m.QuickReplies) == 0 && len(m.Links) == 0 && m.Handoff == nil && !m.Resolve && !m.AskFile {
		return nil
	}
	md := &Metadata{}
	qs, ls := m.QuickReplies, m.Links
	switch {
	case len(qs) > 0 && len(ls) > 0:
		ls = ls[:min(len(ls), ch.maxButtons)]
		qs = qs[:min(len(qs), ch.maxButtons-len(ls))]
		buttons := make([]mixedButton, 0, len(ls)+len(qs))
		for _, l := range ls {
			buttons = append(buttons, mixedButton{Name: ch.title(l.Name), Action: mixedAction{Type: "link", URL: l.URL}})
		}
		for _, q := range qs {
			buttons = append(buttons, mixedButton{Name: ch.title(q), Action: mixedAction{Type: "quickReply", Message: q}})
		}
		md.ContentType, md.TemplateID, md.Payload = richContentType, templateMixed, buttons
	case len(qs) > ch.maxButtons && ch.listOverflow:
		// More choices than the channel shows as buttons: a list.
		items := make([]kommbridge.ListItem, 0, min(len(qs), ch.maxRows))
		for _, q := range qs[:min(len(qs), ch.maxRows)] {
			items = append(items, kommbridge.ListItem{Title: q, Reply: q})
		}
		md.ContentType, md.TemplateID, md.Payload = richContentType, templateList, list(&kommbridge.List{Items: items}, ch.listTitle)
	case len(qs) > 0:
		qs = qs[:min(len(qs), ch.maxButtons)]
		out := make([]quickReply, len(qs))
		for i, q := range qs {
			out[i] = quickReply{Title: ch.title(q), Message: q, ReplyMetadata: quickReplyClick}
		}
		md.ContentType, md.TemplateID, md.Payload = richContentType, templateQuickReply, out
	case len(ls) > 0:
		ls = ls[:min(len(ls), ch.maxButtons)]
		out := make([]linkButton, len(ls))
		for i, l := range ls {
			out[i] = linkButton{Type: "link", URL: l.URL, Name: ch.title(l.Name), NewTab: true}
		}
		md.ContentType, md.TemplateID, md.Payload = richContentType, templateLinks, out
	}
	if m.Handoff != nil {
		assign := m.Handoff.AssignTo
		md.AssignTo = &assign
		md.AssignTeam = m.Handoff.Team
	}
	if m.Resolve {
		md.ActionRequest = resolveConversation
	}
	md.EnableAttachment = m.AskFile
	return md
}

// Template 10: cards.
type (
	card struct {
		Title    string       `json:"title"`
		Subtitle string       `json:"subtitle,omitempty"`
		Header   *cardHeader  `json:"header,omitempty"`
		Buttons  []cardButton `json:"buttons,omitempty"`
	}
	cardHeader struct {
		ImgSrc string `json:"imgSrc"`
	}
	cardButton struct {
		Name   string     `json:"name"`
		Action cardAction `json:"action"`
	}
	cardAction struct {
		Type    string            `json:"type"` // link or quickReply
		Payload map[string]string `json:"payload"`
	}
)

func cards(cs []kommbridge.Card) []card {
	out := make([]card, len(cs))
	for i, c := range cs {
		out[i] = card{Title: c.Title, Subtitle: c.Subtitle}
		if c.ImageURL != "" {
			out[i].Header = &cardHeader{ImgSrc: c.ImageURL}
		}
		for _, b := range c.Buttons {
			a := cardAction{Type: "quickReply", Payload: map[string]string{"message": b.Reply}}
			if b.URL != "" {
				a = cardAction{Type: "link", Payload: map[string]string{"url": b.URL}}
			}
			out[i].Buttons = append(out[i].Buttons, cardButton{Name: b.Name, Action: a})
		}
	}
	return out
}

// Template 7: a list.
type (
	listPayload struct {
		HeaderText string        `json:"headerText,omitempty"`
		Elements   []listElement `json:"elements"`
	}
	listElement struct {
		Title       string     `json:"title"`
		Description string     `json:"description,omitempty"`
		Action      listAction `json:"action"`
	}
	listAction struct {
		Type string `json:"type"` // quick_reply or link
		Text string `json:"text,omitempty"`
		URL  string `json:"url,omitempty"`
	}
)

func list(l *kommbridge.List, title func(string) string) listPayload {
	out := listPayload{HeaderText: l.Header, Elements: make([]listElement, len(l.Items))}
	for i, it := range l.Items {
		a := listAction{Type: "quick_reply", Text: it.Reply}
		if it.URL != "" {
			a = listAction{Type: "link", URL: it.URL}
		}
		out.Elements[i] = listElement{Title: title(it.Title), Description: it.Description, Action: a}
	}
	return out
}

// Template 9: images.
type imagePayload struct {
	URL     string `json:"url"`
	Caption string `json:"caption,omitempty"`
}

func images(is []kommbridge.Image) []imagePayload {
	out := make([]imagePayload, len(is))
	for i, im := range is {
		out[i] = imagePayload{URL: im.URL, Caption: im.Caption}
	}
	return out
}

// Template 12: a form whose submit posts the values back to the bot.
type (
	formField struct {
		Type        string          `json:"type"`
		Label       string          `json:"label,omitempty"`
		Name        string          `json:"name"`
		Placeholder string          `json:"placeholder,omitempty"`
		Value       string          `json:"value,omitempty"`
		Options     []formOption    `json:"options,omitempty"`
		Validation  *formValidation `json:"validation,omitempty"`
		// The submit button's keys.
		Message     string `json:"message,omitempty"`
		RequestType string `json:"requestType,omitempty"`
	}
	formOption struct {
		Label string `json:"label"`
		Value string `json:"value"`
	}
	formValidation struct {
		Regex     string `json:"regex"`
		ErrorText string `json:"errorText"`
	}
)

// postBack is the submit requestType that sends the values to the bot.
const postBack = "postBackToBotPlatform"

func form(f *kommbridge.Form) []formField {
	out := make([]formField, 0, len(f.Fields)+1)
	for _, fd := range f.Fields {
		ff := formField{Type: fd.Type, Label: fd.Label, Name: fd.Name, Placeholder: fd.Placeholder, Value: fd.Value}
		if fd.Type == "hidden" {
			ff.Label = ""
		}
		for _, o := range fd.Options {
			ff.Options = append(ff.Options, formOption{Label: o, Value: o})
		}
		if fd.Regex != "" {
			ff.Validation = &formValidation{Regex: fd.Regex, ErrorText: fd.Error}
		}
		out = append(out, ff)
	}
	return append(out, formField{Type: "submit", Label: f.Submit, Name: f.Submit, Message: f.Submit, RequestType: postBack})
}

// Buttons are the labels of m's buttons, as a user reads them: what a
// quick reply sends, a link's, a list row's or a card button's name.
func (m Message) Buttons() []string {
	if m.Metadata == nil {
		return nil
	}
	var out []string
	switch p := m.Metadata.Payload.(type) {
	case []quickReply:
		for _, q := range p {
			out = append(out, q.Message)
		}
	case []linkButton:
		for _, l := range p {
			out = append(out, l.Name)
		}
	case []mixedButton:
		for _, b := range p {
			out = append(out, b.Name)
		}
	case listPayload:
		for _, e := range p.Elements {
			out = append(out, e.Title)
		}
	case []card:
		for _, c := range p {
			for _, b := range c.Buttons {
				out = append(out, b.Name)
			}
		}
	}
	return out
}

// Resolves reports whether m closes the conversation as resolved.
func (m Message) Resolves() bool {
	return m.Metadata != nil && m.Metadata.ActionRequest == resolveConversation
}

// Marshal renders r as the JSON array a webhook answers with.
func Marshal(r kommbridge.Reply) []byte {
	b, _ := json.Marshal(Render(r)) // only strings, bools, maps and slices
	return b
}
