package bridge

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
)

// userContent is the user's message for the model, and the short text
// stand-in kept in history (never the bytes or an expiring URL).
func (b *Bridge) userContent(_ context.Context, p *profile, ev *kommbridge.Event) ([]llm.Part, string) {
	text := strings.TrimSpace(ev.Text)
	if len(ev.Attachments) == 0 {
		return []llm.Part{{Text: text}}, text
	}
	var parts []llm.Part
	var standIn []string
	if text != "" {
		parts = append(parts, llm.Part{Text: text})
		standIn = append(standIn, text)
	}
	vision := p.Vision == nil || *p.Vision
	for _, a := range ev.Attachments {
		switch {
		case a.Type == "location":
			line := fmt.Sprintf("The user shared a location: latitude %s, longitude %s.", coord(a.Lat), coord(a.Lon))
			parts = append(parts, llm.Part{Text: line})
			standIn = append(standIn, fmt.Sprintf("[location: %s, %s]", coord(a.Lat), coord(a.Lon)))
		case strings.HasPrefix(a.Type, "image/") && vision && a.URL != "":
			parts = append(parts, llm.Part{ImageURL: a.URL})
			standIn = append(standIn, "[image: "+a.Name+"]")
		default:
			parts = append(parts, llm.Part{Text: fmt.Sprintf("The user sent a file named %q (%s) that you cannot open.", a.Name, a.Type)})
			standIn = append(standIn, fmt.Sprintf("[file: %s]", a.Name))
		}
	}
	return parts, strings.Join(standIn, "\n")
}

func coord(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
