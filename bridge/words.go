package bridge

import (
	"strings"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// words splits s into lower-case words without accents, so that "Agénte
// HUMANO!" and "agente humano" match.
func words(s string) []string {
	if !ascii(s) {
		t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
		if folded, _, err := transform.String(t, s); err == nil {
			s = folded
		}
	}
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// containsPhrase reports whether the words of phrase appear in text, in
// order and next to each other.
func containsPhrase(text []string, phrase []string) bool {
	if len(phrase) == 0 {
		return false
	}
outer:
	for i := 0; i+len(phrase) <= len(text); i++ {
		for j, w := range phrase {
			if text[i+j] != w {
				continue outer
			}
		}
		return true
	}
	return false
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
