package kommbridge

import (
	"regexp"
	"strings"
)

// quoted are spans a server's error message quotes: where it echoes what
// it was sent.
var quoted = regexp.MustCompile("'[^']{25,}'|\"[^\"]{25,}\"|`[^`]{25,}`|«[^»]{25,}»")

// Redact is s as a log may hold it when message content is not logged:
// every occurrence of texts (the user's words, an answer) and every long
// quoted span (where servers echo a request) is replaced by "[redacted]".
// Servers' error messages are written through it, since a provider or
// Kommunicate may echo what it was sent.
func Redact(s string, texts ...string) string {
	for _, t := range texts {
		if t = strings.TrimSpace(t); len(t) >= 4 {
			s = strings.ReplaceAll(s, t, "[redacted]")
		}
	}
	return quoted.ReplaceAllString(s, "[redacted]")
}
