package config_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/internal/docblocks"
)

// TestDocumentedConfigsLoad holds every configuration the README and docs/
// show to what kommbridge loads: a block that starts with one of the
// configuration's sections is parsed and validated as a whole file, so an
// example a reader copies cannot carry a renamed key or a refused value.
// Blocks of other files (eval suites, kb eval sets) are left out.
func TestDocumentedConfigsLoad(t *testing.T) {
	blocks, err := docblocks.YAML("..")
	if err != nil {
		t.Fatal(err)
	}
	sections := regexp.MustCompile(`^(server|llm|store|limits|log|bots|kommunicate|media|eval|knowledge|actions|confirmations|identity|privacy|outcomes):`)
	files := regexp.MustCompile(`_file: *(\S+)`)
	env := env(map[string]string{"OPENAI_API_KEY": "sk", "KOMMBRIDGE_WEBHOOK_TOKEN": "token",
		"ACME_API_TOKEN": "t", "KOMMUNICATE_API_KEY": "km", "KOMMBRIDGE_IDENTITY_SECRET": "0123456789abcdef0123456789abcdef"})
	checked := 0
	for _, b := range blocks {
		text := b.Text
		if !sections.MatchString(text) || strings.Contains(text, "\ncases:") {
			continue
		}
		if !strings.HasPrefix(text, "server:") && !strings.Contains(text, "\nserver:") {
			text = "server:\n  auth: {value: token}\n" + text
		}
		// Files the block names (a prompt) are made beside it.
		dir := t.TempDir()
		for _, f := range files.FindAllStringSubmatch(text, -1) {
			name := filepath.Join(dir, f[1])
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, []byte("You are the support assistant of ACME."), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := config.Parse([]byte(text), filepath.Join(dir, "config.yaml"), env); err != nil {
			t.Errorf("%s: a documented configuration does not load:\n%s\n%v", b.File, text, err)
		}
		checked++
	}
	if checked < 3 {
		t.Errorf("only %d documented configurations found", checked)
	}
	t.Logf("%d documented configurations load", checked)
}
