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
