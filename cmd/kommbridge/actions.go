package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v3"
)

const actionsUsage = `kommbridge actions helps write actions.

Usage:
  kommbridge actions import SPEC --operation ID
                      print an action block for an OpenAPI 3 operation (a file or an
                      https URL), to review and paste under actions: in config.yaml
`

func actionsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, actionsUsage)
		return nil
	}
	if args[0] != "import" {
		fmt.Fprintf(stderr, "unknown actions command %q\n\n%s", args[0], actionsUsage)
		return errSilent
	}
	fs := flag.NewFlagSet("actions import", flag.ContinueOnError)
	op := fs.String("operation", "", "the operationId to import")
	words, err := parseFlags(fs, args[1:], true, stdout, stderr)
	if err != nil || words == nil {
		return err
	}
	if len(words) != 1 || *op == "" {
		fmt.Fprint(stderr, "kommbridge actions import SPEC --operation ID\n")
		return errSilent
	}
	out, err := importOperation(ctx, words[0], *op)
	if err != nil {
		fmt.Fprintf(stderr, "kommbridge actions import: %v\n", err)
		return errSilent
	}
	fmt.Fprint(stdout, out)
	return nil
}

// importedAction is the action block written, in the order an operator
// reads it.
type importedAction struct {
	Name           string            `yaml:"name"`
	Description    string            `yaml:"description"`
	Method         string            `yaml:"method"`
	URL            string            `yaml:"url"`
	Parameters     map[string]any    `yaml:"parameters"`
	Headers        map[string]string `yaml:"headers,omitempty"`
	ResponseFields []string          `yaml:"response_fields"`
	Confirm        string            `yaml:"confirm,omitempty"`
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// importOperation writes the action block of the operation id of the
// OpenAPI document at spec.
func importOperation(ctx context.Context, spec, id string) (string, error) {
	loader := openapi3.NewLoader()
	loader.Context = ctx
	var doc *openapi3.T
	var err error
	if strings.HasPrefix(spec, "https://") || strings.HasPrefix(spec, "http://") {
		doc, err = loadURL(loader, spec)
	} else {
		doc, err = loader.LoadFromFile(spec)
	}
	if err != nil {
		return "", err
	}
	if err := doc.Validate(ctx); err != nil {
		return "", fmt.Errorf("%s is not a valid OpenAPI 3 document: %w", spec, err)
	}
	var ids []string
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Find(path)
		for method, o := range item.Operations() {
			ids = append(ids, o.OperationID)
			if o.OperationID != id {
				continue
			}
			return writeAction(doc, path, method, item, o)
		}
	}
	slices.Sort(ids)
	return "", fmt.Errorf("no operation %q; the document has %s", id, strings.Join(ids, ", "))
}

func loadURL(loader *openapi3.Loader, raw string) (*openapi3.T, error) {
	resp, err := http.Get(raw)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d", raw, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	return loader.LoadFromData(data)
}

func writeAction(doc *openapi3.T, path, method string, item *openapi3.PathItem, o *openapi3.Operation) (string, error) {
	a := importedAction{
		Name:        strings.Trim(nonName.ReplaceAllString(strings.ToLower(camelToSnake(o.OperationID)), "_"), "_"),
		Description: strings.TrimSpace(firstNonEmpty(o.Summary, o.Description, method+" "+path)),
		Method:      method,
	}
	server := "https://api.example.com"
	if len(doc.Servers) > 0 {
		server = strings.TrimRight(doc.Servers[0].URL, "/")
	}
	a.URL = server + path
	props, required := map[string]any{}, []string{}
	var query []string
	for _, pr := range append(slices.Clone(item.Parameters), o.Parameters...) {
		p := pr.Value
		if p == nil || (p.In != "path" && p.In != "query") {
			continue
		}
		props[p.Name] = schemaOf(p.Schema, p.Description)
		if p.Required || p.In == "path" {
			required = append(required, p.Name)
		}
		if p.In == "query" {
			query = append(query, p.Name+"={"+p.Name+"}")
		}
	}
	if o.RequestBody != nil && o.RequestBody.Value != nil {
		if mt := o.RequestBody.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil && mt.Schema.Value != nil {
			for name, s := range mt.Schema.Value.Properties {
				props[name] = schemaOf(s, "")
			}
			required = append(required, mt.Schema.Value.Required...)
		}
	}
	if len(query) > 0 && (method == http.MethodGet || method == http.MethodDelete) {
		// Required query values in the template; optional ones go to the
		// query when the model gives them.
		var req []string
		for _, q := range query {
			name, _, _ := strings.Cut(q, "=")
			if slices.Contains(required, name) {
				req = append(req, q)
			}
		}
		if len(req) > 0 {
			a.URL += "?" + strings.Join(req, "&")
		}
	}
	slices.Sort(required)
	a.Parameters = map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		a.Parameters["required"] = slices.Compact(required)
	}
	for name, ss := range doc.Components.SecuritySchemes {
		s := ss.Value
		if s == nil {
			continue
		}
		env := strings.ToUpper(nonName.ReplaceAllString(strings.ToLower(name), "_"))
		switch {
		case s.Type == "http" && strings.EqualFold(s.Scheme, "bearer"):
			a.Headers = map[string]string{"Authorization": "Bearer ${" + env + "_TOKEN}"}
		case s.Type == "apiKey" && s.In == "header":
			a.Headers = map[string]string{s.Name: "${" + env + "_KEY}"}
		}
	}
	for _, code := range []string{"200", "201", "202"} {
		r := o.Responses.Value(code)
		if r == nil || r.Value == nil {
			continue
		}
		if mt := r.Value.Content.Get("application/json"); mt != nil && mt.Schema != nil && mt.Schema.Value != nil {
			for name := range mt.Schema.Value.Properties {
				a.ResponseFields = append(a.ResponseFields, name)
			}
		}
		break
	}
	slices.Sort(a.ResponseFields)
	if len(a.ResponseFields) == 0 {
		a.ResponseFields = []string{"status"}
	}
	if method != http.MethodGet {
		var vars []string
		for _, m := range regexp.MustCompile(`\{([^{}]+)\}`).FindAllStringSubmatch(path, -1) {
			vars = append(vars, "{"+m[1]+"}")
		}
		a.Confirm = strings.TrimSuffix(a.Description, ".") + "? (" + strings.Join(vars, ", ") + ")"
		if len(vars) == 0 {
			a.Confirm = strings.TrimSuffix(a.Description, ".") + "?"
		}
	}
	out, err := yaml.Marshal([]importedAction{a})
	if err != nil {
		return "", errors.New("writing the action: " + err.Error())
	}
	head := fmt.Sprintf("# Imported from operation %s (%s %s). Review before use: keep in response_fields\n"+
		"# only what the model needs, set the header's variable, and check the confirm text.\n", o.OperationID, method, path)
	return head + string(out), nil
}

// schemaOf is an OpenAPI schema as a JSON Schema map (OpenAPI 3.0's
// schema objects are JSON Schema with a few keys more).
func schemaOf(ref *openapi3.SchemaRef, desc string) map[string]any {
	out := map[string]any{}
	if ref == nil || ref.Value == nil {
		out["type"] = "string"
		return out
	}
	s := ref.Value
	if s.Type != nil && len(*s.Type) > 0 {
		out["type"] = (*s.Type)[0]
	}
	if s.Pattern != "" {
		out["pattern"] = s.Pattern
	}
	if len(s.Enum) > 0 {
		out["enum"] = s.Enum
	}
	if s.Format != "" {
		out["format"] = s.Format
	}
	if d := firstNonEmpty(desc, s.Description); d != "" {
		out["description"] = d
	}
	return out
}

func camelToSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if strings.TrimSpace(s) != "" {
			return s
		}
	}
	return ""
}
