package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// docKeys are the keys docs/configuration.md's reference table names, in
// its first column.
func docKeys(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	mapKey := regexp.MustCompile(`\.[A-Z]+$`) // bots[].forms.NAME: a map's key
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_\\[\\].A-Z]+)` \\|").FindAllStringSubmatch(string(data), -1) {
		keys[mapKey.ReplaceAllString(m[1], "")] = true
	}
	if len(keys) < 50 {
		t.Fatalf("found %d keys in docs/configuration.md's table; has its shape changed?", len(keys))
	}
	return keys
}

// The configuration reference and the configuration agree: every key the
// file may hold is in the table (itself, or a section whose row describes
// it), and every key the table names is one the file may hold. A key
// added without its row, or a row left after its key went, fails here.
func TestConfigurationReferenceIsComplete(t *testing.T) {
	documented := docKeys(t)
	known, sections := map[string]bool{}, map[string]bool{}
	for _, k := range keyPaths() {
		known[k.path()] = true
		sections[k.section] = true
	}
	for p := range known {
		if sections[p] || sections[p+"[]"] {
			continue // a section: its keys have rows
		}
		covered := false
		for q := p; q != ""; q = parentKey(q) {
			if documented[q] || documented[strings.TrimSuffix(q, "[]")] {
				covered = true
				break
			}
		}
		if !covered {
			t.Errorf("%s is not in docs/configuration.md", p)
		}
	}
	for k := range documented {
		if !known[k] {
			t.Errorf("docs/configuration.md names %s, which is no key", k)
		}
	}
}

// parentKey is the section a key path stands in: "llm.fallbacks[]" for
// "llm.fallbacks[].model", "llm.fallbacks" for "llm.fallbacks[]".
func parentKey(p string) string {
	if s, ok := strings.CutSuffix(p, "[]"); ok {
		return s
	}
	if i := strings.LastIndex(p, "."); i >= 0 {
		return p[:i]
	}
	return ""
}
