package adapter

import (
	"cmp"
	"encoding/json"
	"net/url"
	"regexp"
	"slices"
	"strings"

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
	// EnableAttachment shows (true) or hides (false) the widget's attach
	// button; nil leaves it as it is.
	EnableAttachment *bool `json:"KM_ENABLE_ATTACHMENT,omitempty"`
	// Category "HIDDEN" keeps a message out of the user's widget (a note
	// for the agents).
	Category string `json:"category,omitempty"`
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

// clickMeta is the replyMetadata of kommbridge's quick replies. The
// button that asks for a person carries TALK_TO_HUMAN, as the widget's own
// Talk to human button does, so that a click hands off at once.
type clickMeta struct {
	Button      string `json:"kommbridge_button"` // ClickKey
	TalkToHuman string `json:"TALK_TO_HUMAN,omitempty"`
	// Confirm is a confirmation button's signed token, or "no".
	Confirm string `json:"kommbridge_confirm,omitempty"` // ConfirmKey
}

// ConfirmKey is the replyMetadata key of confirmation buttons.
const ConfirmKey = "kommbridge_confirm"

var (
	quickReplyClick = &clickMeta{Button: "quick_reply"}
	humanClick      = &clickMeta{Button: "human", TalkToHuman: "true"}
)

type linkButton struct {
	Type   string `json:"type"`
	URL    string `json:"url"`
	Name   string `json:"name"`
	NewTab bool   `json:"openLinkInNewTab"`
}

type mixedButton struct {
	Name          string      `json:"name"`
	Action        mixedAction `json:"action"`
	ReplyMetadata *clickMeta  `json:"replyMetadata,omitempty"`
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
// ("9") and form ("12"), one message each. Every string of a rich payload
// is plain text and every URL a safe link (see markup.go); a part with
// nothing left to show is left out.
func Render(r kommbridge.Reply) []Message {
	ch := channelOf(r.Channel)
	out := make([]Message, 0, len(r.Messages))
	for _, m := range r.Messages {
		text, md := ch.metadata(m)
		out = append(out, Message{Message: text, Metadata: md})
		if cs := cards(m.Cards); len(cs) > 0 {
			out = append(out, Message{Metadata: rich(templateCards, cs)})
		}
		if l := list(m.List, ch); l != nil {
			out = append(out, Message{Metadata: rich(templateList, *l)})
		}
		if is := images(m.Images); len(is) > 0 {
			out = append(out, Message{Metadata: rich(templateImages, is)})
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

// metadata is m's text and the metadata of its buttons and control keys.
// Quick replies take the channel's button slots first; links take the
// rest, and a link left without a slot is written into the text (when
// the text does not hold it already), never dropped.
func (ch channel) metadata(m kommbridge.Message) (string, *Metadata) {
	text := m.Text
	if ch.plainLinks {
		// The channel shows Markdown as typed: a link's text, then its URL.
		text = markdownLink.ReplaceAllString(text, "$1 ($2)")
	}
	var qs []string
	for _, q := range m.QuickReplies {
		if q = plain(q); q != "" {
			qs = append(qs, q)
		}
	}
	human := plain(m.HumanButton)
	if human != "" && !slices.Contains(qs, human) {
		qs = append(qs, human)
	}
	var yes, no string
	if c := m.Confirm; c != nil {
		// The confirmation's own buttons come first, and carry its token.
		yes, no = plain(c.Yes), plain(c.No)
		qs = append([]string{yes, no}, slices.DeleteFunc(qs, func(q string) bool { return q == yes || q == no })...)
	}
	click := func(q string) *clickMeta {
		switch {
		case q == human:
			return humanClick
		case m.Confirm != nil && q == yes:
			return &clickMeta{Button: "confirm", Confirm: m.Confirm.Token}
		case m.Confirm != nil && q == no:
			return &clickMeta{Button: "confirm", Confirm: kommbridge.ConfirmNo}
		}
		return quickReplyClick
	}
	var ls []kommbridge.Link
	for _, l := range m.Links {
		if u := link(l.URL); u != "" {
			ls = append(ls, kommbridge.Link{Name: cmp.Or(plain(l.Name), linkName(u)), URL: u})
		}
	}
	if len(qs) == 0 && len(ls) == 0 && m.Handoff == nil && !m.Resolve && !m.AskFile && !m.FilesDone && !m.Hidden {
		return text, nil
	}
	md := &Metadata{}
	if m.Hidden {
		md.Category = "HIDDEN"
	}
	if !ch.listOverflow || len(qs) <= ch.maxButtons {
		qs = qs[:min(len(qs), ch.maxButtons)]
		if n := ch.maxButtons - len(qs); len(ls) > n {
			for _, l := range ls[n:] {
				if !strings.Contains(text, l.URL) {
					text += "\n" + l.Name + ": " + l.URL
				}
			}
			ls = ls[:n]
		}
	} else {
		// More choices than the channel shows as buttons: a list, and
		// the links as text.
		for _, l := range ls {
			if !strings.Contains(text, l.URL) {
				text += "\n" + l.Name + ": " + l.URL
			}
		}
		ls = nil
	}
	switch {
	case len(qs) > 0 && len(ls) > 0:
		buttons := make([]mixedButton, 0, len(ls)+len(qs))
		for _, l := range ls {
			buttons = append(buttons, mixedButton{Name: ch.title(l.Name), Action: mixedAction{Type: "link", URL: l.URL}})
		}
		for _, q := range qs {
			buttons = append(buttons, mixedButton{Name: ch.title(q), Action: mixedAction{Type: "quickReply", Message: q}, ReplyMetadata: click(q)})
		}
		md.ContentType, md.TemplateID, md.Payload = richContentType, templateMixed, buttons
	case len(qs) > ch.maxButtons:
		items := make([]kommbridge.ListItem, 0, min(len(qs), ch.maxRows))
		for _, q := range qs[:min(len(qs), ch.maxRows)] {
			items = append(items, kommbridge.ListItem{Title: q, Reply: q})
		}
		md.ContentType, md.TemplateID, md.Payload = richContentType, templateList, *list(&kommbridge.List{Items: items}, ch)
	case len(qs) > 0:
		out := make([]quickReply, len(qs))
		for i, q := range qs {
			out[i] = quickReply{Title: ch.title(q), Message: q, ReplyMetadata: click(q)}
		}
		md.ContentType, md.TemplateID, md.Payload = richContentType, templateQuickReply, out
	case len(ls) > 0:
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
	switch {
	case m.AskFile:
		md.EnableAttachment = &enable
	case m.FilesDone:
		md.EnableAttachment = &disable
	}
	return text, md
}

var enable, disable = true, false

var markdownLink = regexp.MustCompile(`\[([^\]\n]{1,80})\]\((https://[^\s<>()"']+)\)`)

// linkName names a link whose own name had nothing left to show: its
// host.
func linkName(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Hostname()
	}
	return "Link"
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
		Type    string      `json:"type"` // link or quickReply
		Payload cardPayload `json:"payload"`
	}
	cardPayload struct {
		URL           string     `json:"url,omitempty"`
		Message       string     `json:"message,omitempty"`
		ReplyMetadata *clickMeta `json:"replyMetadata,omitempty"`
	}
)

func cards(cs []kommbridge.Card) []card {
	var out []card
	for _, c := range cs {
		cd := card{Title: plain(c.Title), Subtitle: plain(c.Subtitle)}
		if cd.Title == "" {
			continue
		}
		if u := link(c.ImageURL); u != "" {
			cd.Header = &cardHeader{ImgSrc: u}
		}
		for _, b := range c.Buttons {
			name := plain(b.Name)
			a := cardAction{Type: "quickReply", Payload: cardPayload{Message: cmp.Or(plain(b.Reply), name), ReplyMetadata: quickReplyClick}}
			if b.URL != "" {
				a = cardAction{Type: "link", Payload: cardPayload{URL: link(b.URL)}}
			}
			if name == "" || a.Type == "link" && a.Payload.URL == "" {
				continue
			}
			cd.Buttons = append(cd.Buttons, cardButton{Name: name, Action: a})
		}
		out = append(out, cd)
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
		Type          string     `json:"type"` // quick_reply or link
		Text          string     `json:"text,omitempty"`
		URL           string     `json:"url,omitempty"`
		ReplyMetadata *clickMeta `json:"replyMetadata,omitempty"`
	}
)

// list is l as the channel shows it; nil when no item is left to show.
func list(l *kommbridge.List, ch channel) *listPayload {
	if l == nil {
		return nil
	}
	out := listPayload{HeaderText: plain(l.Header)}
	for _, it := range l.Items {
		title := plain(it.Title)
		a := listAction{Type: "quick_reply", Text: cmp.Or(plain(it.Reply), title), ReplyMetadata: quickReplyClick}
		if it.URL != "" {
			a = listAction{Type: "link", URL: link(it.URL)}
		}
		if title == "" || a.Type == "link" && a.URL == "" {
			continue
		}
		out.Elements = append(out.Elements, listElement{Title: ch.rowTitle(title), Description: ch.rowDescription(plain(it.Description)), Action: a})
	}
	if len(out.Elements) == 0 {
		return nil
	}
	return &out
}

// Template 9: images.
type imagePayload struct {
	URL     string `json:"url"`
	Caption string `json:"caption,omitempty"`
}

func images(is []kommbridge.Image) []imagePayload {
	var out []imagePayload
	for _, im := range is {
		if u := link(im.URL); u != "" {
			out = append(out, imagePayload{URL: u, Caption: plain(im.Caption)})
		}
	}
	return out
}

// Template 12: a form whose submit posts the values back to the bot.
//
// What the widget does with it (its templates and click handler): text
// and password inputs are named after their label, so their values come
// back keyed by it (bridge reads both); radio, checkbox, dropdown and
// textarea fields take their caption from title; a validation object on a
// radio breaks the form (the Send button leaves it), so radios get none
// and bridge checks them in the post-back; an untouched dropdown posts
// its first option, so a required one starts with an empty, disabled one.
type (
	formField struct {
		Type        string          `json:"type"`
		Label       string          `json:"label,omitempty"`
		Title       string          `json:"title,omitempty"`
		Name        string          `json:"name"`
		Placeholder string          `json:"placeholder,omitempty"`
		Value       string          `json:"value,omitempty"`
		Options     []formOption    `json:"options,omitempty"`
		Validation  *formValidation `json:"validation,omitempty"`
		// The submit button's keys.
		Message     string        `json:"message,omitempty"`
		RequestType string        `json:"requestType,omitempty"`
		Action      *submitAction `json:"action,omitempty"`
	}
	formOption struct {
		Label    string `json:"label"`
		Value    string `json:"value"`
		Selected bool   `json:"selected,omitempty"`
		Disabled bool   `json:"disabled,omitempty"`
	}
	formValidation struct {
		Regex     string `json:"regex,omitempty"`
		ErrorText string `json:"errorText"`
	}
	// submitAction holds the submit's options the widget reads only from
	// an action object.
	submitAction struct {
		RequestType string `json:"requestType"`
		Message     string `json:"message"`
		// PostFormDataAsMessage: the values are posted as visible text
		// under the submit's message.
		PostFormDataAsMessage bool `json:"postFormDataAsMessage"`
	}
)

// postBack is the submit requestType that sends the values to the bot.
const postBack = "postBackToBotPlatform"

func form(f *kommbridge.Form) []formField {
	out := make([]formField, 0, len(f.Fields)+1)
	for _, fd := range f.Fields {
		ff := formField{Type: fd.Type, Label: plain(fd.Label), Name: fd.Name, Placeholder: plain(fd.Placeholder), Value: plain(fd.Value)}
		switch fd.Type {
		case "hidden":
			ff.Label = ""
		case "radio", "checkbox", "dropdown", "textarea":
			ff.Title = ff.Label
		}
		if fd.Type == "dropdown" && fd.Required {
			ff.Options = append(ff.Options, formOption{Label: cmp.Or(ff.Placeholder, "Choose one"), Value: "", Selected: true, Disabled: true})
			ff.Placeholder = ""
		}
		for _, o := range fd.Options {
			o = plain(o)
			ff.Options = append(ff.Options, formOption{Label: o, Value: o})
		}
		switch {
		case fd.Type == "radio" || fd.Type == "checkbox" || fd.Type == "hidden":
			// Checked in the post-back; the widget's radio template breaks
			// with a validation object.
		case fd.Type == "dropdown" && fd.Required:
			ff.Validation = &formValidation{ErrorText: plain(fd.Error)}
		case fd.Regex != "":
			ff.Validation = &formValidation{Regex: fd.Regex, ErrorText: plain(fd.Error)}
		}
		out = append(out, ff)
	}
	submit := plain(f.Submit)
	sf := formField{Type: "submit", Label: submit, Name: submit, Message: submit, RequestType: postBack}
	if f.ShowValues {
		sf.Action = &submitAction{RequestType: postBack, Message: submit, PostFormDataAsMessage: true}
	}
	return append(out, sf)
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
