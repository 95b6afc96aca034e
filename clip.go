package kommbridge

import (
	"strings"
	"unicode/utf16"

	"github.com/rivo/uniseg"
)

// Clip cuts s to at most n user-perceived characters (grapheme clusters),
// ending a cut text with "…": never inside a character, an emoji sequence
// or a letter with its accents.
func Clip(s string, n int) string {
	if len(s) <= n || uniseg.GraphemeClusterCount(s) <= n {
		return s
	}
	var b strings.Builder
	g := uniseg.NewGraphemes(s)
	for i := 0; i < n-1 && g.Next(); i++ {
		b.WriteString(g.Str())
	}
	return strings.TrimSpace(b.String()) + "…"
}

// ClipUnits cuts s to at most n UTF-16 code units, the way WhatsApp and
// Messenger count a title (an emoji outside the Basic Multilingual Plane
// counts 2, a family emoji 11), ending a cut text with "…" and never
// cutting inside a grapheme cluster.
func ClipUnits(s string, n int) string {
	if units(s) <= n {
		return s
	}
	var b strings.Builder
	used := 1 // the ellipsis
	g := uniseg.NewGraphemes(s)
	for g.Next() {
		u := units(g.Str())
		if used+u > n {
			break
		}
		used += u
		b.WriteString(g.Str())
	}
	return strings.TrimSpace(b.String()) + "…"
}

func units(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
