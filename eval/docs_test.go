package eval_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kommbridge/kommbridge/eval"
	"github.com/kommbridge/kommbridge/internal/docblocks"
)

// TestDocumentedSuitesLoad loads every eval suite the README and docs/ show
// (a YAML block with cases), so an example a reader copies cannot carry a
// renamed key.
func TestDocumentedSuitesLoad(t *testing.T) {
	blocks, err := docblocks.YAML("..")
	if err != nil {
		t.Fatal(err)
	}
	attached := regexp.MustCompile(`attachments: \[([^\]]*)\]`)
	checked := 0
	for _, b := range blocks {
		if !strings.HasPrefix(b.Text, "cases:") && !strings.Contains(b.Text, "\ncases:") {
			continue
		}
		// Local files the suite attaches are made beside it.
		dir := t.TempDir()
		for _, list := range attached.FindAllStringSubmatch(b.Text, -1) {
			for _, name := range strings.Split(list[1], ",") {
				name = strings.Trim(strings.TrimSpace(name), `"'`)
				if strings.HasPrefix(name, "https://") {
					continue
				}
				if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, name), []byte("a receipt"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		path := filepath.Join(dir, "suite.yaml")
		if err := os.WriteFile(path, []byte(b.Text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := eval.Load(path); err != nil {
			t.Errorf("%s: a documented suite does not load:\n%s\n%v", b.File, b.Text, err)
		}
		checked++
	}
	if checked < 2 {
		t.Errorf("only %d documented suites found", checked)
	}
	t.Logf("%d documented suites load", checked)
}
