package kommbridge

import (
	"strings"

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
