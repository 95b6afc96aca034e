package prompt_test

import (
	"testing"

	"github.com/kommbridge/kommbridge/prompt"
)

// title upper-cases the first letter, not the first byte.
func TestTitleWorksOnLetters(t *testing.T) {
	tpl, err := prompt.ParseTemplate("t", `{{title .Context.name}}`)
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{"élodie": "Élodie", "asha": "Asha", "ǆemal": "ǅemal", "": "", "日本": "日本"} {
		got, err := tpl.Render(prompt.Vars{Context: map[string]string{"name": in}})
		if err != nil || got != want {
			t.Errorf("title %q = %q (%v), want %q", in, got, err, want)
		}
	}
}
