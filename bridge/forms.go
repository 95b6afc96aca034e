package bridge

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/kommbridge/kommbridge"
)

// maxFormValue bounds one submitted value, in characters.
const maxFormValue = 500

// formFacts turns a submitted form into what the model reads, and reports
// the required fields left empty (their error texts).
//
// The bot's form is the one whose fields hold the most submitted keys,
// each key a field's name or its label (the widget names text and password
// inputs after their labels). The text becomes the values as labelled
// facts in the form's order (not raw JSON), each on one line, a password
// field only as "provided"; keys of no field of that form follow under
// their own names, as data. Only the form's own fields join the chat
// context (for templates, without replacing the website's keys), keyed
// by name; password values go to ev.Secrets alone.
func (p *Profile) formFacts(ev *kommbridge.Event) (form *kommbridge.Form, missing []string) {
	form = p.formFor(ev.Form)
	byName := map[string]string{}
	rest := maps.Clone(ev.Form)
	if form != nil {
		for _, f := range form.Fields {
			for _, key := range []string{f.Name, f.Label} {
				if v, ok := rest[key]; ok {
					byName[f.Name] = oneLine(v)
					delete(rest, key)
					break
				}
			}
		}
	}
	var b strings.Builder
	name := "a form"
	if form != nil {
		name = "the form " + form.Name
	}
	b.WriteString("(The user filled in " + name + ".)")
	line := func(label, v string) {
		if v == "" {
			v = "(left empty)"
		}
		b.WriteString("\n" + oneLine(label) + ": " + v)
	}
	ev.Form = map[string]string{}
	if form != nil {
		for _, f := range form.Fields {
			v, sent := byName[f.Name]
			if f.Required && strings.TrimSpace(v) == "" || v != "" && f.Regex != "" && !matches(f.Regex, v) {
				missing = append(missing, f.Error)
			}
			switch {
			case !sent:
			case f.Type == "password":
				if ev.Secrets == nil {
					ev.Secrets = map[string]string{}
				}
				ev.Secrets[f.Name] = v
				if v != "" {
					v = "provided"
				}
				line(f.Label, v)
			case f.Type == "hidden":
				ev.Form[f.Name] = v
			default:
				ev.Form[f.Name] = v
				line(f.Label, v)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(rest)) {
		line(k, oneLine(rest[k]))
	}
	if t := typed(ev.Text, form, ev.Form); t != "" {
		b.WriteString("\nThey wrote: " + t)
	}
	ev.Text = b.String()
	if ev.Context == nil {
		ev.Context = make(map[string]string, len(ev.Form))
	}
	for k, v := range ev.Form {
		if _, taken := ev.Context[k]; !taken {
			ev.Context[k] = v
		}
	}
	return form, missing
}

// typed is what the user wrote with a form's post-back beyond its submit
// label and the values the widget echoes as "name : value" lines.
func typed(text string, form *kommbridge.Form, values map[string]string) string {
	var kept []string
	for i, l := range strings.Split(strings.TrimSpace(text), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || i == 0 && form != nil && strings.EqualFold(l, form.Submit) {
			continue
		}
		if k, _, ok := strings.Cut(l, " : "); ok && form != nil && slices.ContainsFunc(form.Fields, func(f kommbridge.FormField) bool {
			return f.Name == k || f.Label == k
		}) {
			continue
		}
		kept = append(kept, l)
	}
	return oneLine(strings.Join(kept, " "))
}

// oneLine is a submitted value as data on one line: control characters
// and line breaks become spaces, runs of spaces one, at most maxFormValue
// characters.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	return kommbridge.Clip(strings.Join(strings.Fields(s), " "), maxFormValue)
}

func matches(expr, v string) bool {
	re, err := regexp.Compile(expr)
	return err != nil || re.MatchString(v) // config checked it compiles
}

// formFor is the bot's form with the most fields among the submitted keys
// (a key a field's name or label); nil when none has any. Ties go to the
// first by name.
func (p *Profile) formFor(values map[string]string) *kommbridge.Form {
	var best *kommbridge.Form
	most := 0
	for _, name := range slices.Sorted(maps.Keys(p.Forms)) {
		f := p.Forms[name]
		n := 0
		for _, fd := range f.Fields {
			if _, ok := values[fd.Name]; ok {
				n++
			} else if _, ok := values[fd.Label]; ok {
				n++
			}
		}
		if n > most {
			best, most = f, n
		}
	}
	return best
}
