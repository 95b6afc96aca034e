package config_test

import (
	"strings"
	"testing"

	"github.com/kommbridge/kommbridge/config"
)

// An indentation mistake is reported at the line that has it, with a
// hint, not at the start of the block the parser was reading.
func TestYAMLMistakesNameTheirLine(t *testing.T) {
	tests := []struct {
		name, yml, want string
	}{
		{"deeper than a value", "llm:\n  model: gpt-4o\n   max_retries: 2\n", "c.yaml:3: indented 3 spaces, deeper than the line before it"},
		{"between two blocks", "bots:\n  - id: \"*\"\n    handoff:\n      message: x\n     phrases: [a]\n", "c.yaml:5: indented 5 spaces, which lines up with no block above it"},
		{"a list item's key", "llm:\n  model: x\n  fallbacks:\n    - base_url: x\n     model: y\n", "c.yaml:5: indented 5 spaces"},
		{"a section one space in", "server:\n  addr: \":8080\"\n llm:\n  model: x\n", "c.yaml:3: indented 1 spaces"},
		{"a key at the list's depth", "bots:\n  - id: a\n    welcome:\n      text: hi\n  suggested_replies: {max: 1}\n", "c.yaml:5: a key indented 2 spaces, as the list items above it are"},
		{"a tab", "server:\n\treply_budget: 10s\n", "c.yaml:2: a tab in the indentation"},
		{"a key in the wrong section", "llm:\n  model: x\nmax_retries: 2\n", `c.yaml:3: unknown key "max_retries" in the top level: max_retries is a key of llm; check its indentation`},
		{"a key one level too high", "bots:\n  - id: a\n    welcome:\n    text: hi\n", `c.yaml:4: unknown key "text" in bots[]: text is a key of bots[].welcome; check its indentation`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.yml), "c.yaml", func(string) string { return "" })
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v\nwant %q", err, tt.want)
			}
		})
	}
	// Valid files with lists at their key's depth, block scalars, flow
	// collections over several lines and comments pass.
	ok := "bots:\n- id: a\n  system_prompt: |\n    Be brief.\n      Indented text is text.\n  handoff:\n    phrases: [\"a\",\n      \"b\"]\n    # a comment\n- id: b\nllm:\n  model: x\n"
	if _, err := config.Parse([]byte(ok), "c.yaml", func(string) string { return "" }); err != nil {
		t.Errorf("a valid file: %v", err)
	}
}
