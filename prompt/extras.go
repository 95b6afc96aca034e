package prompt

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
)

// Rich answer kinds a bot may allow (bots[].rich).
const (
	RichCards  = "cards"
	RichLists  = "lists"
	RichImages = "images"
)

// Signals beyond handoff and resolve: functions in the tools format,
// markers in the text format.
const (
	CardsTool        = "show_cards"
	ListTool         = "show_list"
	ImagesTool       = "show_images"
	FormTool         = "show_form"
	FileTool         = "request_file"
	FileMarker       = "[ATTACH]"
	SourcesTool      = "cite_sources"
	ViolationBadRich = "bad_rich"
)

var formMarkerRE = regexp.MustCompile(`\[FORM:\s*([A-Za-z0-9_-]*)\s*\]`)

func formMarker(text string) []string {
	if !strings.Contains(text, "[FORM:") {
		return nil
	}
	return formMarkerRE.FindStringSubmatch(text)
}

const (
	buttonSchema = `{"type":"object","properties":{"label":{"type":"string","description":"The button's text, a few words."},` +
		`"url":{"type":"string","description":"An https link the button opens, or empty for a reply button."},` +
		`"reply":{"type":"string","description":"What a click sends as the user's message, when url is empty."}},` +
		`"required":["label","url","reply"],"additionalProperties":false}`
	cardSchema = `{"type":"object","properties":{"title":{"type":"string"},"subtitle":{"type":"string"},` +
		`"image_url":{"type":"string","description":"An https image URL from your instructions or the conversation, or empty."},` +
		`"buttons":{"type":"array","items":` + buttonSchema + `}},` +
		`"required":["title","subtitle","image_url","buttons"],"additionalProperties":false}`
	cardsSchema = `{"type":"array","description":"Cards shown under the reply (products, plans, articles), at most 10, or [].","items":` + cardSchema + `}`
	itemSchema  = `{"type":"object","properties":{"title":{"type":"string"},"description":{"type":"string"},` +
		`"reply":{"type":"string","description":"What a click sends as the user's message."}},` +
		`"required":["title","description","reply"],"additionalProperties":false}`
	listSchema = `{"type":"object","description":"A list of choices shown under the reply, at most 10 items; items [] for none.",` +
		`"properties":{"header":{"type":"string"},"items":{"type":"array","items":` + itemSchema + `}},` +
		`"required":["header","items"],"additionalProperties":false}`
	imageSchema   = `{"type":"object","properties":{"url":{"type":"string","description":"An https image URL."},"caption":{"type":"string"}},"required":["url","caption"],"additionalProperties":false}`
	imagesSchema  = `{"type":"array","description":"Images shown under the reply (https URLs from your instructions or the conversation), at most 5, or [].","items":` + imageSchema + `}`
	fileSchema    = `{"type":"boolean","description":"True when you ask the user to send a file or a photo."}`
	sourcesSchema = `{"type":"array","items":{"type":"integer"},"description":"The numbers of the help-center passages your reply uses, or []."}`
)

// sourcesRule is what the model is told about citing passages.
const sourcesRule = "Answer questions about the business only from the help-center passages in the system message; if they do not answer the question, say you could not find it rather than guessing. Never write a link that is not in a passage."

func formSchema(names []string) string {
	enum, _ := json.Marshal(append([]string{""}, names...))
	return `{"type":"string","enum":` + string(enum) + `,"description":"The form to show the user for their details, or empty."}`
}

// extras adds what o allows beyond handoff and resolve to the contract:
// schema fields, instructions, tools.
func (c *Contract) extras(o ContractOptions, b *strings.Builder, fields *[]extraField) {
	has := func(kind string) bool {
		for _, k := range o.Rich {
			if k == kind {
				return true
			}
		}
		return false
	}
	forms := strings.Join(o.Forms, ", ")
	switch o.Format {
	case kommbridge.FormatJSONSchema, kommbridge.FormatJSONObject:
		if has(RichCards) {
			*fields = append(*fields, extraField{"cards", cardsSchema})
			b.WriteString(`- "cards": cards to show under the reply, when showing a few options (products, plans, articles) helps: [{"title", "subtitle", "image_url" (https, or ""), "buttons": [{"label", "url" (https, or ""), "reply" (what a click sends when url is "")}]}], at most 10; otherwise [].` + "\n")
		}
		if has(RichLists) {
			*fields = append(*fields, extraField{"list", listSchema})
			b.WriteString(`- "list": choices the user picks one of: {"header", "items": [{"title", "description", "reply" (what a click sends)}]}, at most 10 items; otherwise {"header": "", "items": []}.` + "\n")
		}
		if has(RichImages) {
			*fields = append(*fields, extraField{"images", imagesSchema})
			b.WriteString(`- "images": images to show, only https URLs you were given: [{"url", "caption"}], at most 5; otherwise [].` + "\n")
		}
		if len(o.Forms) > 0 {
			*fields = append(*fields, extraField{"form", formSchema(o.Forms)})
			fmt.Fprintf(b, "- \"form\": to collect the user's details, the form to show, one of: %s; otherwise \"\".\n", forms)
		}
		if o.AskFile {
			*fields = append(*fields, extraField{"request_file", fileSchema})
			b.WriteString(`- "request_file": true when you ask the user to send a file or a photo; otherwise false.` + "\n")
		}
		if o.Sources {
			*fields = append(*fields, extraField{"sources", sourcesSchema})
			b.WriteString(`- "sources": the numbers of the help-center passages your reply uses, such as [2, 5]; [] when it uses none.` + "\n")
			b.WriteString(sourcesRule + "\n")
		}
	case kommbridge.FormatTools:
		add := func(name, desc, params, say string) {
			c.Tools = append(c.Tools, llm.Tool{Name: name, Description: desc, Parameters: json.RawMessage(params)})
			b.WriteString("\n" + say)
		}
		if has(RichCards) {
			add(CardsTool, "Show cards under your reply: a few options such as products, plans or articles.",
				`{"type":"object","properties":{"cards":`+cardsSchema+`},"required":["cards"]}`,
				"To show a few options as cards (products, plans, articles), call "+CardsTool+" along with your reply.")
		}
		if has(RichLists) {
			add(ListTool, "Show a list of choices under your reply; a click sends the item's reply.",
				`{"type":"object","properties":{"header":{"type":"string"},"items":{"type":"array","items":`+itemSchema+`}},"required":["items"]}`,
				"To offer choices the user picks one of, call "+ListTool+" along with your reply.")
		}
		if has(RichImages) {
			add(ImagesTool, "Show images under your reply (https URLs you were given).",
				`{"type":"object","properties":{"images":`+imagesSchema+`},"required":["images"]}`,
				"To show images (only https URLs you were given), call "+ImagesTool+" along with your reply.")
		}
		if len(o.Forms) > 0 {
			enum, _ := json.Marshal(o.Forms)
			add(FormTool, "Show a form for the user's details.",
				`{"type":"object","properties":{"name":{"type":"string","enum":`+string(enum)+`}},"required":["name"]}`,
				"To collect the user's details, call "+FormTool+" with one of: "+forms+".")
		}
		if o.AskFile {
			add(FileTool, "Let the user attach a file or a photo.", `{"type":"object","properties":{},"additionalProperties":false}`,
				"When you ask the user to send a file or a photo, call "+FileTool+".")
		}
		if o.Sources {
			add(SourcesTool, "Name the help-center passages your reply uses.", `{"type":"object","properties":{"sources":`+sourcesSchema+`},"required":["sources"]}`,
				"When your reply uses help-center passages, call "+SourcesTool+" with their numbers along with your reply. "+sourcesRule)
		}
	default: // Text: no rich parts (config refuses them), markers for the rest.
		if len(o.Forms) > 0 {
			b.WriteString("\nTo collect the user's details, put [FORM:name] at the end of your reply, name one of: " + forms + ".")
		}
		if o.AskFile {
			b.WriteString("\nWhen you ask the user to send a file or a photo, put " + FileMarker + " at the end of your reply.")
		}
		if o.Sources {
			b.WriteString("\nAfter a sentence that uses a help-center passage, write its number in brackets, such as [2]. " + sourcesRule)
		}
	}
}

// Rich parts as the model writes them, leniently typed.
type (
	wireButton struct {
		Label, URL, Reply string
		Name, Message     string // other spellings models use
	}
	wireCard struct {
		Title, Subtitle string
		ImageURL        string `json:"image_url"`
		Buttons         []wireButton
	}
	wireItem struct{ Title, Description, Reply string }
	wireList struct {
		Header string
		Items  []wireItem
	}
)

func (w wireButton) button() kommbridge.Button {
	b := kommbridge.Button{Name: strings.TrimSpace(w.Label), URL: strings.TrimSpace(w.URL), Reply: strings.TrimSpace(w.Reply)}
	if b.Name == "" {
		b.Name = strings.TrimSpace(w.Name)
	}
	if b.Reply == "" {
		b.Reply = strings.TrimSpace(w.Message)
	}
	return b
}

// decodeCards, decodeList and decodeImages read rich parts; ok is false
// when raw is there but not the shape asked for.
func decodeCards(raw json.RawMessage) (out []kommbridge.Card, ok bool) {
	if absent(raw) {
		return nil, true
	}
	var ws []wireCard
	if !decodeOptional(raw, &ws) {
		return nil, false
	}
	for _, w := range ws {
		c := kommbridge.Card{Title: strings.TrimSpace(w.Title), Subtitle: strings.TrimSpace(w.Subtitle), ImageURL: strings.TrimSpace(w.ImageURL)}
		for _, b := range w.Buttons {
			c.Buttons = append(c.Buttons, b.button())
		}
		out = append(out, c)
	}
	return out, true
}

func decodeList(raw json.RawMessage) (*kommbridge.List, bool) {
	if absent(raw) {
		return nil, true
	}
	var w wireList
	if !decodeOptional(raw, &w) {
		return nil, false
	}
	if len(w.Items) == 0 {
		return nil, true
	}
	l := &kommbridge.List{Header: strings.TrimSpace(w.Header)}
	for _, it := range w.Items {
		l.Items = append(l.Items, kommbridge.ListItem{Title: strings.TrimSpace(it.Title), Description: strings.TrimSpace(it.Description), Reply: strings.TrimSpace(it.Reply)})
	}
	return l, true
}

func decodeImages(raw json.RawMessage) (out []kommbridge.Image, ok bool) {
	if absent(raw) {
		return nil, true
	}
	var ws []kommbridge.Image
	if !decodeOptional(raw, &ws) {
		return nil, false
	}
	for _, w := range ws {
		out = append(out, kommbridge.Image{URL: strings.TrimSpace(w.URL), Caption: strings.TrimSpace(w.Caption)})
	}
	return out, true
}

func decodeOptional(raw json.RawMessage, v any) bool {
	return absent(raw) || json.Unmarshal(raw, v) == nil
}

// absent reports whether a rich part is left out (most replies): the
// decoders return before making anything.
func absent(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// richFields are the rich parts and extra signals of a JSON reply.
type richFields struct {
	Cards       json.RawMessage `json:"cards"`
	List        json.RawMessage `json:"list"`
	Images      json.RawMessage `json:"images"`
	Form        string          `json:"form"`
	RequestFile json.RawMessage `json:"request_file"`
	Sources     json.RawMessage `json:"sources"`
}

// readExtras takes the rich parts and signals out of a JSON reply.
func (p *Parsed) readExtras(r richFields) {
	var ok [3]bool
	p.Cards, ok[0] = decodeCards(r.Cards)
	p.List, ok[1] = decodeList(r.List)
	p.Images, ok[2] = decodeImages(r.Images)
	if !ok[0] || !ok[1] || !ok[2] {
		p.violate(ViolationBadRich)
	}
	p.Form = strings.TrimSpace(r.Form)
	p.AskFile = truthy(r.RequestFile)
	p.Sources = append(p.Sources, numbers(r.Sources)...)
}

// numbers reads a list of passage numbers leniently: numbers, or strings
// holding them ("2", "[2]"); anything else is left out.
func numbers(raw json.RawMessage) []int {
	if absent(raw) {
		return nil
	}
	var list []any
	if json.Unmarshal(raw, &list) != nil {
		return nil
	}
	var out []int
	for _, v := range list {
		switch n := v.(type) {
		case float64:
			if n == float64(int(n)) {
				out = append(out, int(n))
			}
		case string:
			if i, err := strconv.Atoi(strings.Trim(strings.TrimSpace(n), "[]")); err == nil {
				out = append(out, i)
			}
		}
	}
	return out
}

var sourceMarker = regexp.MustCompile(`\s?\[(\d{1,2})\]`)

// SourceMarkers takes "[n]" markers out of p.Text as sources: the text
// format's way of citing, and one models use in every format. Only a bot
// that gave the model passages calls it (elsewhere "[2]" is the model's
// own text).
func (p *Parsed) SourceMarkers() {
	if !strings.Contains(p.Text, "[") {
		return
	}
	for _, m := range sourceMarker.FindAllStringSubmatch(p.Text, -1) {
		if n, err := strconv.Atoi(m[1]); err == nil {
			p.Sources = append(p.Sources, n)
		}
	}
	p.Text = strings.TrimSpace(sourceMarker.ReplaceAllString(p.Text, ""))
}

// toolExtras reads a call of one of the extra tools; false when name is
// none of them.
func (p *Parsed) toolExtras(name, args string) bool {
	raw := json.RawMessage(args)
	var bad bool
	switch name {
	case CardsTool:
		var a struct{ Cards json.RawMessage }
		bad = json.Unmarshal(raw, &a) != nil
		var ok bool
		if p.Cards, ok = decodeCards(a.Cards); !ok {
			bad = true
		}
	case ListTool:
		var ok bool
		if p.List, ok = decodeList(raw); !ok {
			bad = true
		}
	case ImagesTool:
		var a struct{ Images json.RawMessage }
		bad = json.Unmarshal(raw, &a) != nil
		var ok bool
		if p.Images, ok = decodeImages(a.Images); !ok {
			bad = true
		}
	case FormTool:
		var a struct{ Name string }
		bad = json.Unmarshal(raw, &a) != nil
		p.Form = strings.TrimSpace(a.Name)
	case FileTool:
		p.AskFile = true
	case SourcesTool:
		var a struct{ Sources json.RawMessage }
		bad = json.Unmarshal(raw, &a) != nil
		p.Sources = append(p.Sources, numbers(a.Sources)...)
	default:
		return false
	}
	if bad {
		p.violate(ViolationBadRich)
	}
	return true
}

// textMarkers takes the form and file markers out of p.Text; they count
// only in the text format.
func (p *Parsed) textMarkers(format kommbridge.ReplyFormat) {
	// Most replies hold no marker: the regular expression runs only where
	// one may stand.
	if m := formMarker(p.Text); m != nil {
		if format == kommbridge.FormatText {
			p.Form = m[1]
		}
		p.Text = strings.TrimSpace(formMarkerRE.ReplaceAllString(p.Text, ""))
	}
	if strings.Contains(p.Text, FileMarker) {
		p.AskFile = p.AskFile || format == kommbridge.FormatText
		p.Text = strings.TrimSpace(strings.ReplaceAll(p.Text, FileMarker, ""))
	}
}
