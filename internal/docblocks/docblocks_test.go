package docblocks

import (
	"os"
	"path/filepath"
	"testing"
)

func TestYAML(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	readme := "# x\n```yaml\nbots: []\n```\ntext\n```json\n{}\n```\n"
	page := "1. a step\n   ```yaml\n   cases:\n     - name: a\n   ```\n"
	if err := os.WriteFile(filepath.Join(root, "README.md"), []byte(readme), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "docs", "a.md"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	blocks, err := YAML(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []Block{
		{filepath.Join(root, "docs", "a.md"), "cases:\n  - name: a\n"},
		{filepath.Join(root, "README.md"), "bots: []\n"},
	}
	if len(blocks) != len(want) {
		t.Fatalf("got %q, want %q", blocks, want)
	}
	for i := range want {
		if blocks[i] != want[i] {
			t.Errorf("block %d: got %q, want %q", i, blocks[i], want[i])
		}
	}
}
