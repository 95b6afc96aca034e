package prompt

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
)

// Parsed is what the model said, cleaned: Text is safe to show the user.
type Parsed struct {
	Text string
	// Confidence is the model's own confidence; nil when it gave none.
	Confidence    *float64
	Handoff       bool
	HandoffReason string
	Team          string
	Suggested     []string
	// Violation names how the reply broke its format's contract; "" when
	// it kept it. The reply is still usable when Text is not empty.
	Violation string
	// Refusal: the model declined to answer; Text is its words for it.
	Refusal bool
	// Filtered: the provider's content filter withheld the answer (what
	// Text holds of it, if anything, is not to be shown).
	Filtered bool
	// CutOff: the answer stopped at the token limit (max_tokens).
	CutOff bool
	// Resolved: the model says the user's issue is solved (honoured only
	// by bots with resolve: auto).
	Resolved bool
	// Rich parts the model asked to show, as it wrote them (bridge
	// validates them against the bot's rules).
	Cards  []kommbridge.Card
	List   *kommbridge.List
	Images []kommbridge.Image
	// Form is the form the model asked to show; AskFile: it asked for a
	// file.
	Form    string
	AskFile bool
	// Sources are the numbers of the help-center passages the model says
	// it used, as it wrote them (bridge keeps those it was given).
	Sources []int
}

// Violations of the reply contract.
const (
	ViolationNotJSON       = "not_json"
	ViolationCodeFence     = "code_fence"
	ViolationExtraText     = "extra_text"
	ViolationMissingFields = "missing_fields"
	ViolationInvalidJSON   = "invalid_json"
	ViolationBadToolArgs   = "bad_tool_args"
	ViolationUnknownTool   = "unknown_tool"
	ViolationEmpty         = "empty"
	// ViolationDoubleEncoded: the reply text was itself a JSON reply
	// object, which is unwrapped.
	ViolationDoubleEncoded = "double_encoded"
	// ViolationStrayMarker: the text marker in a format that signals a
	// handoff otherwise; it is removed and does not hand off.
	ViolationStrayMarker = "stray_marker"
)

// Parse reads a response in format. Whatever the format, Text never holds
// raw JSON, a tool call or the handoff marker. An empty Text with no
// handoff means the model said nothing usable.
func Parse(format kommbridge.ReplyFormat, r llm.Response) Parsed {
	switch {
	case r.FinishReason == "content_filter":
		return Parsed{Filtered: true}
	case strings.TrimSpace(r.Content) == "" && strings.TrimSpace(r.Refusal) != "" && len(r.ToolCalls) == 0:
		return Parsed{Text: strings.TrimSpace(r.Refusal), Refusal: true}
	}
	p := parse(format, r)
	p.CutOff = r.FinishReason == "length"
	return p
}

func parse(format kommbridge.ReplyFormat, r llm.Response) Parsed {
	var p Parsed
	content := strings.TrimSpace(r.Content)
	switch format {
	case kommbridge.FormatJSONSchema, kommbridge.FormatJSONObject:
		p = parseJSON(content)
	default:
		p = parseLoose(content)
		for _, tc := range r.ToolCalls {
			if tc.Name == ResolveTool {
				p.Resolved = true
				continue
			}
			if p.toolExtras(tc.Name, tc.Arguments) {
				continue
			}
			if tc.Name != HandoffTool {
				p.violate(ViolationUnknownTool)
				continue
			}
			p.Handoff = true
			var args struct {
				Reason string `json:"reason"`
				Team   string `json:"team"`
			}
			if err := json.Unmarshal([]byte(tc.Arguments), &args); err != nil {
				p.violate(ViolationBadToolArgs)
				continue
			}
			p.HandoffReason, p.Team = args.Reason, args.Team
		}
	}
	p.unwrap()
	p.textMarkers(format)
	if strings.Contains(p.Text, ResolvedMarker) {
		p.Resolved = p.Resolved || format == kommbridge.FormatText
		p.Text = strings.TrimSpace(strings.ReplaceAll(p.Text, ResolvedMarker, ""))
	}
	if strings.Contains(p.Text, HandoffMarker) {
		// The marker is the text format's handoff signal; elsewhere the
		// contract has its own, and a stray marker is only removed.
		if format == kommbridge.FormatText {
			p.Handoff = true
		} else {
			p.violate(ViolationStrayMarker)
		}
		p.Text = strings.TrimSpace(strings.ReplaceAll(p.Text, HandoffMarker, ""))
	}
	if p.Text == "" && !p.Handoff {
		p.violate(ViolationEmpty)
	}
	return p
}

// unwrap takes the reply out of a Text that is itself a JSON reply object
// (models sometimes encode the whole object into "reply"): its fields count
// where the outer object left them out. A JSON object with no reply in it
// is never shown.
func (p *Parsed) unwrap() {
	for depth := 0; depth < 3; depth++ {
		t := strings.TrimSpace(p.Text)
		if !strings.HasPrefix(t, "{") && !strings.HasPrefix(t, "```") {
			return
		}
		if body, _ := unfence(t); !strings.HasPrefix(body, "{") || !json.Valid([]byte(body)) {
			return
		}
		inner := parseJSON(t)
		p.violate(ViolationDoubleEncoded)
		if inner.Violation == ViolationMissingFields && inner.Text == "" {
			p.Text = "" // an object with nothing to say
			return
		}
		p.Text = inner.Text
		if p.Confidence == nil {
			p.Confidence = inner.Confidence
		}
		p.Handoff = p.Handoff || inner.Handoff
		p.Resolved = p.Resolved || inner.Resolved
		if p.HandoffReason == "" {
			p.HandoffReason = inner.HandoffReason
		}
		if p.Team == "" {
			p.Team = inner.Team
		}
		if len(p.Suggested) == 0 {
			p.Suggested = inner.Suggested
		}
		if p.Cards == nil && p.List == nil && p.Images == nil {
			p.Cards, p.List, p.Images = inner.Cards, inner.List, inner.Images
		}
		if p.Form == "" {
			p.Form = inner.Form
		}
		p.AskFile = p.AskFile || inner.AskFile
		if len(p.Sources) == 0 {
			p.Sources = inner.Sources
		}
	}
}

func (p *Parsed) violate(v string) {
	if p.Violation == "" {
		p.Violation = v
	}
}

// parseLoose reads free text, unwrapping a contract object a model sent
// where none was asked for.
func parseLoose(s string) Parsed {
	if strings.HasPrefix(s, "{") || strings.HasPrefix(s, "```") {
		p := parseJSON(s)
		if p.Text != "" {
			p.Violation = ""
			return p
		}
		if json.Valid([]byte(strings.TrimSpace(s))) {
			// An object with nothing to say: never show it.
			return Parsed{Violation: ViolationMissingFields}
		}
	}
	return Parsed{Text: s}
}

// wire is the contract object with every field optional and leniently typed.
type wire struct {
	Reply            *string         `json:"reply"`
	Confidence       json.RawMessage `json:"confidence"`
	Handoff          json.RawMessage `json:"handoff"`
	Resolved         json.RawMessage `json:"resolved"`
	HandoffReason    string          `json:"handoff_reason"`
	Team             string          `json:"team"`
	SuggestedReplies []any           `json:"suggested_replies"`
	// Names models use when they forget "reply".
	Answer   *string `json:"answer"`
	Message  *string `json:"message"`
	Response *string `json:"response"`
	Text     *string `json:"text"`
	richFields
}

func parseJSON(s string) Parsed {
	var p Parsed
	if body, ok := unfence(s); ok {
		s = body
		p.violate(ViolationCodeFence)
	}
	start := strings.IndexByte(s, '{')
	if start < 0 {
		p.violate(ViolationNotJSON)
		p.Text = s
		return p
	}
	before := strings.TrimSpace(s[:start])
	if before != "" {
		p.violate(ViolationExtraText)
	}
	var w wire
	// Most replies are the object alone: one Unmarshal. Otherwise a
	// Decoder finds where the object ends and what follows it.
	if obj := strings.TrimRightFunc(s[start:], unicode.IsSpace); !strings.HasSuffix(obj, "}") || json.Unmarshal([]byte(obj), &w) != nil {
		w = wire{}
		dec := json.NewDecoder(strings.NewReader(s[start:]))
		if err := dec.Decode(&w); err != nil {
			p.violate(ViolationInvalidJSON)
			p.Text = salvageReply(s[start:])
			if p.Text == "" {
				p.Text = before
			}
			return p
		}
		if rest := strings.TrimSpace(s[start+int(dec.InputOffset()):]); rest != "" && before == "" {
			p.violate(ViolationExtraText)
		}
	}
	switch {
	case w.Reply != nil:
		p.Text = strings.TrimSpace(*w.Reply)
	default:
		p.violate(ViolationMissingFields)
		for _, alt := range []*string{w.Answer, w.Message, w.Response, w.Text} {
			if alt != nil {
				p.Text = strings.TrimSpace(*alt)
				break
			}
		}
		if p.Text == "" {
			p.Text = before
		}
	}
	if c, ok := number(w.Confidence); ok {
		c = min(max(c, 0), 1)
		p.Confidence = &c
	}
	p.Handoff = truthy(w.Handoff)
	p.Resolved = truthy(w.Resolved)
	p.readExtras(w.richFields)
	p.HandoffReason = strings.TrimSpace(w.HandoffReason)
	p.Team = strings.TrimSpace(w.Team)
	for _, v := range w.SuggestedReplies {
		if s, ok := v.(string); ok {
			if s = strings.TrimSpace(s); s != "" {
				p.Suggested = append(p.Suggested, s)
			}
		}
	}
	return p
}

// unfence returns the body of a Markdown code fence around s.
func unfence(s string) (string, bool) {
	if !strings.HasPrefix(s, "```") {
		return s, false
	}
	s = s[3:]
	if nl := strings.IndexByte(s, '\n'); nl >= 0 {
		s = s[nl+1:] // drop the language tag line
	}
	if end := strings.LastIndex(s, "```"); end >= 0 {
		s = s[:end]
	}
	return strings.TrimSpace(s), true
}

// salvageReply recovers the reply text of a cut-short or broken object:
// the "reply" string up to where it ends or the text stops.
func salvageReply(s string) string {
	i := strings.Index(s, `"reply"`)
	if i < 0 {
		return ""
	}
	s = strings.TrimLeft(s[i+len(`"reply"`):], " \t\r\n")
	if !strings.HasPrefix(s, ":") {
		return ""
	}
	s = strings.TrimLeft(s[1:], " \t\r\n")
	if !strings.HasPrefix(s, `"`) {
		return ""
	}
	var b bytes.Buffer
	b.WriteByte('"')
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			b.WriteByte(c)
			b.WriteByte(s[i+1])
			i++
			continue
		}
		if c == '"' {
			break
		}
		b.WriteByte(c)
	}
	b.WriteByte('"')
	raw := b.Bytes()
	var out string
	for json.Unmarshal(raw, &out) != nil {
		// Cut inside an escape: drop it and what follows.
		i := bytes.LastIndexByte(raw, '\\')
		if i <= 0 {
			return ""
		}
		raw = append(raw[:i], '"')
	}
	return strings.TrimSpace(out)
}

func number(raw json.RawMessage) (float64, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, false
	}
	s := strings.Trim(string(raw), `"`)
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil
}

func truthy(raw json.RawMessage) bool {
	switch strings.ToLower(strings.Trim(string(raw), `"`)) {
	case "true", "yes", "1":
		return true
	}
	return false
}
