package config_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kommbridge/kommbridge/config"
)

// yamlBlock is a fenced YAML block of a Markdown file.
var yamlBlock = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocumentedConfigsLoad holds every configuration the README and docs/
// show to what kommbridge loads: a block that starts with one of the
// configuration's sections is parsed and validated as a whole file, so an
// example a reader copies cannot carry a renamed key or a refused value.
// Blocks of other files (eval suites, kb eval sets) and fragments (a key
// shown inside its section) are left out.
func TestDocumentedConfigsLoad(t *testing.T) {
	docs, _ := filepath.Glob("../docs/*.md")
	docs = append(docs, "../README.md")
	sections := regexp.MustCompile(`^(server|llm|store|limits|log|bots|kommunicate|media|eval|knowledge|actions|confirmations|identity|privacy|outcomes):`)
	files := regexp.MustCompile(`_file: *(\S+)`)
	env := env(map[string]string{"OPENAI_API_KEY": "sk", "KOMMBRIDGE_WEBHOOK_TOKEN": "token",
		"ACME_API_TOKEN": "t", "KOMMUNICATE_API_KEY": "km", "KOMMBRIDGE_IDENTITY_SECRET": "0123456789abcdef0123456789abcdef"})
	checked := 0
	for _, file := range docs {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range yamlBlock.FindAllSubmatch(data, -1) {
			block := string(m[1])
			if !sections.MatchString(block) || strings.Contains(block, "\ncases:") {
				continue
			}
			if !strings.Contains(block, "\nserver:") && !strings.HasPrefix(block, "server:") {
				block = "server:\n  auth: {value: token}\n" + block
			}
			// Files the block names (a prompt) are made beside it.
			dir := t.TempDir()
			for _, f := range files.FindAllStringSubmatch(block, -1) {
				name := filepath.Join(dir, f[1])
				if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(name, []byte("You are the support assistant of ACME."), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := config.Parse([]byte(block), filepath.Join(dir, "config.yaml"), env); err != nil {
				t.Errorf("%s: a documented configuration does not load:\n%s\n%v", file, block, err)
			}
			checked++
		}
	}
	if checked < 3 {
		t.Errorf("only %d documented configurations found", checked)
	}
	t.Logf("%d documented configurations load", checked)
}
