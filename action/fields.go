package action

// pickAll cuts v to the dot paths: the result holds each path's value in
// its place, objects and lists kept around it ("items.name" keeps the
// name of every item), and nothing else.
func pickAll(v any, paths [][]string) any {
	var out any
	for _, p := range paths {
		if got, ok := pick(v, p); ok {
			out = merge(out, got)
		}
	}
	if out == nil {
		return map[string]any{}
	}
	return out
}

// pick is v cut to one path; ok is false when the path is not there.
func pick(v any, path []string) (any, bool) {
	if len(path) == 0 {
		return v, true
	}
	switch x := v.(type) {
	case map[string]any:
		child, ok := x[path[0]]
		if !ok {
			return nil, false
		}
		sub, ok := pick(child, path[1:])
		if !ok {
			return nil, false
		}
		return map[string]any{path[0]: sub}, true
	case []any:
		out := make([]any, len(x))
		found := false
		for i, e := range x {
			if sub, ok := pick(e, path); ok {
				out[i], found = sub, true
			}
		}
		return out, found
	}
	return nil, false
}

// merge joins two cuts of the same value.
func merge(a, b any) any {
	switch x := a.(type) {
	case nil:
		return b
	case map[string]any:
		if y, ok := b.(map[string]any); ok {
			for k, v := range y {
				x[k] = merge(x[k], v)
			}
			return x
		}
	case []any:
		if y, ok := b.([]any); ok && len(y) == len(x) {
			for i := range x {
				x[i] = merge(x[i], y[i])
			}
			return x
		}
	}
	return a
}
