package bridge

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kommbridge/kommbridge"
)

// fitChannel turns the rich parts of m that the channel does not show
// (kommbridge.Shows) into text under m's words, options numbered: a card
// becomes its title and subtitle with its links written out, its reply
// buttons quick replies; a list its items, their replies quick replies; a
// form the fields to reply with (never a password field: a secret is not
// asked for in the chat). It reports whether it changed m.
func fitChannel(m *kommbridge.Message, channel string) bool {
	cards, list, form := kommbridge.Shows(channel)
	var sections []string
	var b strings.Builder
	next := func() {
		if s := strings.TrimSpace(b.String()); s != "" {
			sections = append(sections, s)
		}
		b.Reset()
	}
	if !cards && len(m.Cards) > 0 {
		for i, c := range m.Cards {
			fmt.Fprintf(&b, "\n%d. %s", i+1, joinNonEmpty(": ", c.Title, c.Subtitle))
			for _, btn := range c.Buttons {
				if btn.URL != "" {
					fmt.Fprintf(&b, "\n   %s: %s", btn.Name, btn.URL)
				} else {
					m.QuickReplies = addReply(m.QuickReplies, btn.Reply)
				}
			}
		}
		m.Cards = nil
		next()
	}
	if !list && m.List != nil {
		if m.List.Header != "" {
			b.WriteString("\n" + m.List.Header)
		}
		for i, it := range m.List.Items {
			fmt.Fprintf(&b, "\n%d. %s", i+1, joinNonEmpty(": ", it.Title, it.Description))
			if it.URL != "" {
				b.WriteString(" " + it.URL)
			} else {
				m.QuickReplies = addReply(m.QuickReplies, it.Reply)
			}
		}
		m.List = nil
		next()
	}
	if !form && m.Form != nil {
		f := m.Form
		if f.Text != "" {
			b.WriteString("\n" + f.Text)
		}
		b.WriteString("\nPlease reply with:")
		n := 0
		for _, fd := range f.Fields {
			if fd.Type == "hidden" || fd.Type == "password" {
				continue
			}
			n++
			fmt.Fprintf(&b, "\n%d. %s", n, fd.Label)
			if len(fd.Options) > 0 {
				b.WriteString(" (" + strings.Join(fd.Options, ", ") + ")")
			}
		}
		m.Form = nil
		next()
	}
	if len(sections) == 0 {
		return false
	}
	m.Text = strings.TrimSpace(strings.Join(append([]string{m.Text}, sections...), "\n\n"))
	return true
}

func addReply(replies []string, r string) []string {
	if r = strings.TrimSpace(r); r == "" || slices.Contains(replies, r) {
		return replies
	}
	return append(replies, r)
}

func joinNonEmpty(sep string, parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, sep)
}
