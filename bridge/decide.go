package bridge

import (
	"regexp"
	"slices"
	"strings"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/prompt"
)

// handoffReason decides whether the model's answer hands off, and why;
// "" means it does not.
func handoffReason(p *profile, parsed prompt.Parsed, resp llm.Response) string {
	switch {
	case parsed.Handoff:
		return kommbridge.HandoffModel
	case parsed.Confidence != nil && *parsed.Confidence < p.minConfidence:
		return kommbridge.HandoffLowConfidence
	case p.Handoff.MinTokenConfidence > 0 && len(resp.Tokens) > 0 && meanProb(resp.Tokens) < p.Handoff.MinTokenConfidence:
		return kommbridge.HandoffLowConfidence
	}
	return ""
}

func meanProb(tokens []llm.TokenProb) float64 {
	var sum float64
	for _, t := range tokens {
		sum += t.Prob
	}
	return sum / float64(len(tokens))
}

// quickReplies keeps at most max suggestions, trimmed and without repeats.
func quickReplies(suggested []string, max int) []string {
	if max <= 0 || len(suggested) == 0 {
		return nil
	}
	out := make([]string, 0, min(max, len(suggested)))
	for _, s := range suggested {
		s = strings.TrimSpace(s)
		if s == "" || slices.Contains(out, s) {
			continue
		}
		out = append(out, s)
		if len(out) == max {
			break
		}
	}
	return out
}

var httpsLink = regexp.MustCompile(`https://[^\s<>()"']+[^\s<>()"'.,;:!?]`)

// links finds the https links of a reply, for link buttons.
func links(text string) []kommbridge.Link {
	var out []kommbridge.Link
	for _, u := range httpsLink.FindAllString(text, 5) {
		name := strings.TrimPrefix(u, "https://")
		if i := strings.IndexByte(name, '/'); i > 0 {
			name = name[:i]
		}
		out = append(out, kommbridge.Link{Name: name, URL: u})
	}
	return out
}
