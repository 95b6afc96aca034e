package bridge

import (
	"strings"
	"testing"

	"github.com/kommbridge/kommbridge/prompt"
)

// The model's part of a handoff note stays within max_words; what
// kommbridge knows is kept whole.
func TestNoteWords(t *testing.T) {
	long := strings.Repeat("word ", 200)
	n := Note{Known: Known{Reason: "asked for a person", Messages: 3, Form: map[string]string{"email": "a@b.example"}},
		Summary: &prompt.NoteSummary{Intent: long, Tried: long, Facts: []string{long}, OpenQuestion: long, Sentiment: "upset"}}
	text := n.text(40)
	start := strings.Index(text, "Intent:")
	end := strings.Index(text, "Form:")
	if start < 0 || end < 0 {
		t.Fatalf("note:\n%s", text)
	}
	part := text[start:end]
	if words := len(strings.Fields(part)); words > 40+2 { // the cut's "..."
		t.Errorf("%d words in the model's part", words)
	}
	if !strings.Contains(text, "Reason: asked for a person; 3 messages from the user") || !strings.Contains(text, "Form: email: a@b.example") {
		t.Errorf("the known part:\n%s", text)
	}
}
