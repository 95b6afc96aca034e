// Package docblocks reads the YAML examples of kommbridge's documentation,
// for the tests that hold every example a reader may copy to what
// kommbridge loads.
package docblocks

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Block is one fenced YAML block of a Markdown file.
type Block struct {
	File string // the Markdown file, as found under root
	Text string // the block's lines, its fence's indent taken off
}

var fence = regexp.MustCompile("(?sm)^( *)```yaml\n(.*?)```")

// YAML returns every fenced YAML block of root's README.md and docs/*.md,
// in file order. A block indented under a list item loses its fence's
// indent on every line.
func YAML(root string) ([]Block, error) {
	files, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		return nil, err
	}
	files = append(files, filepath.Join(root, "README.md"))
	var blocks []Block
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		for _, m := range fence.FindAllStringSubmatch(string(data), -1) {
			indent, lines := m[1], strings.Split(m[2], "\n")
			for i, line := range lines {
				lines[i] = strings.TrimPrefix(line, indent)
			}
			blocks = append(blocks, Block{File: file, Text: strings.Join(lines, "\n")})
		}
	}
	return blocks, nil
}
