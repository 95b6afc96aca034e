package bridge

import (
	"maps"
	"slices"
	"strings"

	"github.com/kommbridge/kommbridge"
)

// formFacts turns a submitted form into what the model reads: the text
// becomes the values as labelled facts (not raw JSON), and the values join
// the event's chat context (without replacing the website's keys), so
// templates see them too. The form is the bot's form whose fields hold
// every submitted name; its labels and field order are used.
func (p *Profile) formFacts(ev *kommbridge.Event) {
	form := p.formFor(ev.Form)
	var b strings.Builder
	name := "a form"
	if form != nil {
		name = "the form " + form.Name
	}
	b.WriteString("(The user filled in " + name + ".)")
	written := map[string]bool{}
	line := func(label, key string) {
		v := strings.TrimSpace(ev.Form[key])
		if v == "" {
			v = "(left empty)"
		}
		b.WriteString("\n" + label + ": " + v)
		written[key] = true
	}
	if form != nil {
		for _, f := range form.Fields {
			if _, ok := ev.Form[f.Name]; ok && f.Type != "hidden" {
				line(f.Label, f.Name)
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(ev.Form)) {
		if !written[k] && (form == nil || !hiddenField(form, k)) {
			line(k, k)
		}
	}
	if t := strings.TrimSpace(ev.Text); t != "" && (form == nil || !strings.EqualFold(t, form.Submit)) {
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
}

func hiddenField(f *kommbridge.Form, name string) bool {
	for _, fd := range f.Fields {
		if fd.Name == name {
			return fd.Type == "hidden"
		}
	}
	return false
}

// formFor is the bot's form that has a field for every submitted name;
// nil when none does.
func (p *Profile) formFor(values map[string]string) *kommbridge.Form {
	for _, name := range slices.Sorted(maps.Keys(p.Forms)) {
		f := p.Forms[name]
		if hasFields(f, values) {
			return f
		}
	}
	return nil
}

func hasFields(f *kommbridge.Form, values map[string]string) bool {
	for k := range values {
		if !slices.ContainsFunc(f.Fields, func(fd kommbridge.FormField) bool { return fd.Name == k }) {
			return false
		}
	}
	return true
}
