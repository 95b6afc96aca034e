package kommbridge

import (
	"html"
	"net/url"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// SafeLink reports whether s may be put where Kommunicate's widget opens
// or loads it (a link button, a card's image, an image): an absolute https
// URL with a host and no user information, holding no character that
// could end an HTML attribute or start markup, neither as written nor
// once character references in it are decoded (the widget decodes some
// fields before inserting them) nor under Unicode compatibility folding
// (a fullwidth "＜" is a "<" there).
func SafeLink(s string) bool {
	if s == "" || len(s) > 2048 || !markupFree(s) {
		return false
	}
	decoded := Unescape(s)
	if !markupFree(decoded) || !markupFree(norm.NFKC.String(decoded)) {
		return false
	}
	for _, v := range []string{s, decoded} {
		u, err := url.Parse(v)
		if err != nil || !strings.EqualFold(u.Scheme, "https") || u.Host == "" || u.User != nil {
			return false
		}
	}
	return true
}

// markupFree reports whether s holds none of the characters that start
// markup or end an attribute value, no whitespace and no control
// character.
func markupFree(s string) bool {
	for _, r := range s {
		switch {
		case r <= ' ', r == 0x7f, r >= 0x80 && r <= 0x9f:
			return false
		case strings.ContainsRune("<>\"'`\\", r):
			return false
		case r == '\u2028' || r == '\u2029' || r == '\ufeff':
			return false
		}
	}
	return true
}

// Unescape decodes HTML character references in s until none is left
// ("&amp;lt;" becomes "<"), as a widget that decodes a field again and
// again would see it. It stops after a few rounds; each round shortens s.
func Unescape(s string) string {
	for range 8 {
		if !strings.Contains(s, "&") {
			return s
		}
		d := html.UnescapeString(s)
		if d == s {
			return s
		}
		s = d
	}
	return s
}
