package eval

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// unknownKeys reports every key of a suite file that is not a suite's,
// in the suite's own terms: where it stands (the case by name, the turn by
// number), the keys valid there, and the one it most likely meant.
func unknownKeys(path string, doc *yaml.Node) []error {
	var errs []error
	var walk func(n *yaml.Node, t reflect.Type, where string)
	walk = func(n *yaml.Node, t reflect.Type, where string) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case n.Kind == yaml.DocumentNode && len(n.Content) > 0:
			walk(n.Content[0], t, where)
		case n.Kind == yaml.SequenceNode && t.Kind() == reflect.Slice:
			for i, item := range n.Content {
				walk(item, t.Elem(), itemName(where, t.Elem(), item, i))
			}
		case n.Kind == yaml.MappingNode && t.Kind() == reflect.Struct:
			fields := yamlFields(t)
			for i := 0; i+1 < len(n.Content); i += 2 {
				key := n.Content[i].Value
				ft, ok := fields[key]
				if !ok {
					errs = append(errs, fmt.Errorf("%s:%d: unknown key %q in %s%s (valid: %s)", path, n.Content[i].Line, key, where,
						meant(key, fields), strings.Join(slices.Sorted(mapsKeys(fields)), ", ")))
					continue
				}
				inner := where
				if ft.Kind() == reflect.Struct || ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct {
					inner = where + ", " + key
				}
				walk(n.Content[i+1], ft, inner)
			}
		}
	}
	walk(doc, reflect.TypeFor[Suite](), "the suite")
	return errs
}

// itemName names the i-th item of a list in a suite: a case by its name,
// a turn by its number.
func itemName(where string, t reflect.Type, n *yaml.Node, i int) string {
	switch t {
	case reflect.TypeFor[Case]():
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == "name" {
				return "case " + strconv.Quote(n.Content[j+1].Value)
			}
		}
		return fmt.Sprintf("cases[%d]", i)
	case reflect.TypeFor[Turn]():
		return fmt.Sprintf("%s, turn %d", where, i+1)
	}
	return fmt.Sprintf("%s[%d]", where, i)
}

// yamlFields maps a struct's YAML keys to their types.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.IsExported() && name != "" && name != "-" {
			out[name] = f.Type
		}
	}
	return out
}

func mapsKeys(m map[string]reflect.Type) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// meant is ": did you mean "x"?" for the known key closest to key (at most
// two edits away, or one holding the other), else "".
func meant(key string, fields map[string]reflect.Type) string {
	best, dist := "", 3
	for _, k := range slices.Sorted(mapsKeys(fields)) {
		d := edits(strings.ToLower(key), k)
		if strings.HasPrefix(k, key) || strings.HasPrefix(key, k) {
			d = min(d, 1)
		}
		if d < dist {
			best, dist = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(": did you mean %q?", best)
}

// edits is the Levenshtein distance of a and b.
func edits(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
