package prompt_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/media"
	"github.com/kommbridge/kommbridge/prompt"
)

func TestNonVisionImage(t *testing.T) {
	parts, hist := prompt.UserContent("", []media.Item{{Kind: media.Image, Name: "receipt.png", Type: "image/png"}}, "")
	if len(parts) != 1 || parts[0].ImageURL != "" || !strings.Contains(parts[0].Text, `The user sent an image named "receipt.png". You cannot see images`) {
		t.Errorf("parts %+v", parts)
	}
	if hist != "[image: receipt.png]" {
		t.Errorf("history %q", hist)
	}
	c := prompt.NewContract(prompt.ContractOptions{Format: kommbridge.FormatJSONSchema, NoVision: true})
	if !strings.Contains(c.Instructions, "You cannot see images.") {
		t.Error("the system prompt does not tell a non-vision model it cannot see images")
	}
}

func TestUnreadableNeverLeaksTheReason(t *testing.T) {
	parts, _ := prompt.UserContent("", []media.Item{{Kind: media.Document, Name: "x.pdf", Err: errors.New("refused: 10.0.0.1 is private")}}, "")
	if strings.Contains(parts[0].Text, "10.0.0.1") || !strings.Contains(parts[0].Text, "could not be read") {
		t.Errorf("part %q", parts[0].Text)
	}
}

// Shorten halves a document's text inside its markers, and marks the cut.
func TestShorten(t *testing.T) {
	doc := strings.Repeat("ab", 2000)
	parts, _ := prompt.UserContent("what does it say?", []media.Item{{Kind: media.Document, Name: "a.txt", Text: doc}}, "")
	got := prompt.Shorten(parts)
	if got[0].Text != "what does it say?" {
		t.Errorf("short text changed: %q", got[0].Text)
	}
	text := got[1].Text
	if !strings.Contains(text, "<<<DOCUMENT\n"+strings.Repeat("ab", 1000)+"\n"+prompt.TruncatedMarker+"\nDOCUMENT>>>") {
		t.Errorf("shortened document: %.200q ... %q", text, text[len(text)-60:])
	}
	if parts[1].Text == text {
		t.Error("the input was changed in place")
	}
}
