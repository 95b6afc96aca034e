package prompt

import (
	"fmt"
	"strings"
	"text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

// Vars are the values a template can use: {{.BotID}}, {{.UserID}},
// {{.ConversationID}}, {{.Language}}, {{.Context.name}}, {{.Now}}, and in
// handoff.offline_message {{.Opens}}.
type Vars struct {
	BotID          string
	UserID         string
	ConversationID string
	// Language is the user's language code or locale from the chat
	// context, or "the user's language" when the widget sent neither.
	Language string
	// Context holds the chat context's keys (the website's custom keys such
	// as a name or plan). A missing key renders as an empty string.
	Context map[string]string
	Now     time.Time
	// Opens says when the team is next in ("tomorrow at 09:00 CET"), for
	// handoff.offline_message; "" elsewhere.
	Opens string
}

// Template is a parsed text/template. Text without actions is kept as is
// and rendered without running the template engine.
type Template struct {
	src string
	t   *template.Template // nil for plain text
}

var funcs = template.FuncMap{
	// default returns def when v is empty: {{default "there" .Context.name}}.
	"default": func(def string, v any) string {
		if s, ok := v.(string); ok && s != "" {
			return s
		}
		if v != nil {
			if s := fmt.Sprint(v); s != "" {
				return s
			}
		}
		return def
	},
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"title": title,
}

// title upper-cases the first letter of s, whatever its length in bytes
// ("élodie" is "Élodie").
func title(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToTitle(r)) + s[n:]
}

// ParseTemplate parses text as a template called name. The error names the
// line and column of a syntax problem.
func ParseTemplate(name, text string) (*Template, error) {
	if !strings.Contains(text, "{{") {
		return &Template{src: text}, nil
	}
	t, err := template.New(name).Funcs(funcs).Option("missingkey=zero").Parse(text)
	if err != nil {
		return nil, err
	}
	// Execute once with empty values so that a call of a missing field
	// (a typo such as {{.Lang}}) is caught at load, not in a chat.
	if err := t.Execute(discard{}, Vars{Context: map[string]string{}}); err != nil {
		return nil, err
	}
	return &Template{src: text, t: t}, nil
}

// Render executes the template with v. A nil Template renders as "".
func (t *Template) Render(v Vars) (string, error) {
	if t == nil {
		return "", nil
	}
	if t.t == nil {
		return t.src, nil
	}
	var b strings.Builder
	if err := t.t.Execute(&b, v); err != nil {
		return "", fmt.Errorf("prompt: render %s: %w", t.t.Name(), err)
	}
	return b.String(), nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
