package config

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// yamlSyntax turns the YAML parser's syntax error into one that names the
// line at fault. The parser reports a badly indented line at the start of
// the block around it ("line 1: did not find expected key"); indentation
// finds the line itself and says what is wrong with it.
func yamlSyntax(path string, data []byte, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if line, why := indentation(data); line > 0 {
		return fmt.Errorf("%s:%d: %s (the parser says: %s)", path, line, why, msg)
	}
	if m := lineN.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: %s", path, m[1], m[2])
	}
	return fmt.Errorf("%s: %s", path, msg)
}

// indentation finds the first line whose indentation YAML cannot read: a
// tab, a line indented under one that opens no block, or a line indented
// back to a depth no enclosing block has. It returns 0 when it sees none.
func indentation(data []byte) (int, string) {
	type block struct {
		indent int
		seq    bool // a list indented under its key: its lines start with "- "
	}
	levels := []block{{}} // each open block, innermost last
	opens := false        // the line before ends a key that opens a block
	scalar := -1          // inside a block scalar (|, >) opened at this indentation
	depth := 0            // open brackets of a flow collection spanning lines
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimRight(raw, " \r")
		content := strings.TrimLeft(line, " ")
		indent := len(line) - len(content)
		if content == "" || strings.HasPrefix(content, "#") {
			continue
		}
		if scalar >= 0 && indent > scalar {
			continue
		}
		scalar = -1
		if depth > 0 {
			depth += strings.Count(content, "[") + strings.Count(content, "{") - strings.Count(content, "]") - strings.Count(content, "}")
			continue
		}
		if strings.HasPrefix(content, "\t") {
			return i + 1, "a tab in the indentation: YAML indents with spaces only"
		}
		isItem := strings.HasPrefix(content, "- ") || content == "-"
		top := levels[len(levels)-1].indent
		switch {
		case indent > top && !opens:
			return i + 1, fmt.Sprintf("indented %d spaces, deeper than the line before it, which opens no block: check this line's indentation", indent)
		case indent > top:
			levels = append(levels, block{indent: indent, seq: isItem})
		case indent < top:
			var open []int
			for _, l := range levels {
				open = append(open, l.indent)
			}
			for len(levels) > 1 && levels[len(levels)-1].indent > indent {
				levels = levels[:len(levels)-1]
			}
			if levels[len(levels)-1].indent != indent {
				return i + 1, fmt.Sprintf("indented %d spaces, which lines up with no block above it (%s): check this line's indentation", indent, spaces(open))
			}
		}
		if levels[len(levels)-1].seq && !isItem {
			return i + 1, fmt.Sprintf("a key indented %d spaces, as the list items above it are (they start with \"- \"): indent it to its own section's depth", indent)
		}
		// "- key: value" opens the item's mapping, two columns in.
		item := content
		for strings.HasPrefix(item, "- ") {
			item = strings.TrimLeft(item[2:], " ")
			indent = len(line) - len(item)
			levels = append(levels, block{indent: indent})
		}
		value := item
		if k := keyEnd(item); k >= 0 {
			value = strings.TrimSpace(stripComment(item[k+1:]))
		}
		opens = value == "" || value == "-"
		if strings.HasPrefix(value, "|") || strings.HasPrefix(value, ">") {
			scalar, opens = indent, false
		}
		depth = strings.Count(value, "[") + strings.Count(value, "{") - strings.Count(value, "]") - strings.Count(value, "}")
		if depth < 0 {
			depth = 0
		}
	}
	return 0, ""
}

// keyEnd is the index of the colon that ends a mapping key in s, or -1.
func keyEnd(s string) int {
	if strings.HasPrefix(s, `"`) || strings.HasPrefix(s, `'`) {
		q := s[0]
		if j := strings.IndexByte(s[1:], q); j >= 0 {
			if rest := s[j+2:]; strings.HasPrefix(rest, ":") {
				return j + 2
			}
		}
		return -1
	}
	for i := 0; i < len(s); i++ {
		if s[i] == ':' && (i+1 == len(s) || s[i+1] == ' ') {
			return i
		}
		if s[i] == '[' || s[i] == '{' || s[i] == '#' {
			return -1
		}
	}
	return -1
}

func stripComment(s string) string {
	if i := strings.Index(s, " #"); i >= 0 {
		return s[:i]
	}
	return s
}

func spaces(levels []int) string {
	levels = slicesCompact(levels)
	parts := make([]string, len(levels))
	for i, l := range levels {
		parts[i] = fmt.Sprint(l)
	}
	return "blocks at " + strings.Join(parts, ", ") + " spaces"
}

func slicesCompact(s []int) []int {
	var out []int
	for _, v := range s {
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}

var unmarshaler = reflect.TypeFor[yaml.Unmarshaler]()

// A keyPath is one key the file may hold: its name, and the section it
// stands in ("" at the top level, "llm.fallbacks[]" in a fallback).
type keyPath struct{ section, name string }

// path is the key's full path, as docs/configuration.md writes it.
func (k keyPath) path() string {
	if k.section == "" {
		return k.name
	}
	return k.section + "." + k.name
}

// keyPaths lists every key of Config, read from its yaml tags; the keys
// of a map (bot ids, form names) are not listed, nor what stands under them.
func keyPaths() []keyPath {
	var out []keyPath
	var walk func(t reflect.Type, section string)
	walk = func(t reflect.Type, section string) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			if t.Kind() == reflect.Slice {
				section += "[]"
			}
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || reflect.PointerTo(t).Implements(unmarshaler) {
			return // a value, or one that decodes itself (a duration, min_score)
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")
			if tag[0] == "-" || !f.IsExported() {
				continue
			}
			if len(tag) > 1 && tag[1] == "inline" {
				walk(f.Type, section)
				continue
			}
			k := keyPath{section, tag[0]}
			out = append(out, k)
			walk(f.Type, k.path())
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return out
}

// keyHomes maps every key name to the sections it belongs to, for the
// hint on an unknown key ("max_retries is a key of llm").
var keyHomes = func() map[string][]string {
	homes := map[string][]string{}
	for _, k := range keyPaths() {
		where := cmp.Or(k.section, "the top level")
		if !slices.Contains(homes[k.name], where) {
			homes[k.name] = append(homes[k.name], where)
		}
	}
	for k := range homes {
		sort.Strings(homes[k])
	}
	return homes
}()

// unknownKeyHint says where a key that is unknown in one section belongs,
// or which known key it resembles.
func unknownKeyHint(key string) string {
	if homes := keyHomes[key]; len(homes) > 0 {
		return fmt.Sprintf(": %s is a key of %s; check its indentation", key, strings.Join(homes, " and "))
	}
	return ""
}
