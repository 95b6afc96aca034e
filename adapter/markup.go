package adapter

import (
	"regexp"
	"strings"
	"unicode"

	"github.com/kommbridge/kommbridge"
)

// The markup rule. Kommunicate's widget builds some rich fields into HTML
// without escaping them (link and card button names, a list's header and
// descriptions, and more), decoding character references in some first.
// Every string kommbridge puts into a rich payload is therefore plain
// text that no decoding turns into markup: plain removes tags, and
// neutralises every character that starts markup or ends an attribute,
// however it was written (character references, nested, fullwidth or
// other look-alikes). URLs pass kommbridge.SafeLink or are left out.

// lookalikes map characters that read as, or fold to, markup characters
// onto them, so that "＜img＞" is treated as the tag it imitates.
var lookalikes = strings.NewReplacer(
	"\uFF1C", "<", "\uFE64", "<", "\u226E", "<", "\u2039", "<", "\u2329", "<", "\u3008", "<", "\u27E8", "<", "\u276C", "<", "\u276E", "<", "\u02C2", "<", "\u1438", "<",
	"\uFF1E", ">", "\uFE65", ">", "\u226F", ">", "\u203A", ">", "\u232A", ">", "\u3009", ">", "\u27E9", ">", "\u276D", ">", "\u276F", ">", "\u02C3", ">", "\u1433", ">",
	"\uFF02", `"`, "\uFF07", "'", "\uFF40", "`", "\u1FEF", "`", "\uFF06", "&", "\uFE60", "&",
)

var tag = regexp.MustCompile(`<[^<>]*>`)

// quotes become their typographic forms, which end no attribute.
var quotes = strings.NewReplacer(`"`, "\u201D", "'", "\u2019", "`", "\u2019")

// brackets drops the angle brackets no tag pattern matched.
var brackets = strings.NewReplacer("<", "", ">", "")

// maxPlain bounds the bytes plain reads; rich fields are far shorter.
const maxPlain = 4096

// plain is s as text safe for the widget's raw insertion. Until nothing
// changes: control characters become spaces, references are decoded,
// look-alikes folded, tags removed, stray angle brackets dropped. Then
// quotes are made typographic and runs of spaces one space. The result
// holds no tag, no angle bracket or look-alike, no quote that ends an
// attribute, and no reference that a further decoding could turn into
// any of them.
func plain(s string) string {
	if len(s) > maxPlain {
		s = kommbridge.Clip(s, maxPlain/4)
	}
	if inert(s) {
		return strings.Join(strings.Fields(s), " ")
	}
	return neutral(s)
}

// neutral is plain's rule for text that may hold markup.
func neutral(s string) string {
	for range 8 {
		t := strings.Map(func(r rune) rune {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
				return ' '
			}
			return r
		}, s)
		t = tag.ReplaceAllString(lookalikes.Replace(kommbridge.Unescape(t)), "")
		t = brackets.Replace(t)
		if t == s {
			break
		}
		s = t
	}
	if kommbridge.Unescape(s) != s {
		// References nested deeper than the rounds above: no ampersand,
		// no reference.
		s = strings.ReplaceAll(s, "&", "")
	}
	return strings.Join(strings.Fields(quotes.Replace(s)), " ")
}

// inert reports whether s is printable ASCII without a character that
// starts markup, a reference or a quote: what plain would return with
// its spaces tidied (most button titles).
func inert(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7E || strings.IndexByte("&<>\"'`", c) >= 0 {
			return false
		}
	}
	return true
}

// link is u when the widget may open or load it, else "".
func link(u string) string {
	if kommbridge.SafeLink(u) {
		return u
	}
	return ""
}
