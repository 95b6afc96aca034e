package prompt_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/llm"
	"github.com/kommbridge/kommbridge/prompt"
)

// Every schema a bot can send keeps OpenAI's strict structured-output
// rules: each object lists all its properties as required and allows no
// others. Each option adds its field, and only that.
func TestSchemaIsStrict(t *testing.T) {
	for _, tt := range []struct {
		name   string
		opts   prompt.ContractOptions
		fields []string
	}{
		{"plain", prompt.ContractOptions{}, nil},
		{"everything", prompt.ContractOptions{Resolve: true, Rich: []string{prompt.RichCards, prompt.RichLists, prompt.RichImages}, Forms: []string{"contact", "order"}, AskFile: true},
			[]string{"resolved", "cards", "list", "images", "form", "request_file"}},
		{"lists only", prompt.ContractOptions{Rich: []string{prompt.RichLists}}, []string{"list"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Format = kommbridge.FormatJSONSchema
			c := prompt.NewContract(tt.opts)
			var r llm.Request
			c.Apply(&r)
			var schema map[string]any
			if err := json.Unmarshal(r.Schema, &schema); err != nil {
				t.Fatalf("schema is not JSON: %v\n%s", err, r.Schema)
			}
			strict(t, "$", schema)
			want := append([]string{"reply", "confidence", "handoff", "handoff_reason", "team", "suggested_replies"}, tt.fields...)
			var got []string
			for k := range schema["properties"].(map[string]any) {
				got = append(got, k)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("fields %v, want %v", got, want)
			}
			for _, f := range tt.fields {
				if !strings.Contains(c.Instructions, `"`+f+`"`) {
					t.Errorf("the instructions do not explain %q", f)
				}
			}
		})
	}
}

func strict(t *testing.T, path string, s map[string]any) {
	t.Helper()
	if props, ok := s["properties"].(map[string]any); ok {
		var req []string
		for _, r := range s["required"].([]any) {
			req = append(req, r.(string))
		}
		for k, v := range props {
			if !slices.Contains(req, k) {
				t.Errorf("%s: property %q is not required", path, k)
			}
			strict(t, path+"."+k, v.(map[string]any))
		}
		if s["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties is not false", path)
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		strict(t, path+"[]", items)
	}
}

// The tools format offers one function per option; the text format
// explains its markers.
func TestContractToolsAndMarkers(t *testing.T) {
	opts := prompt.ContractOptions{Format: kommbridge.FormatTools, Rich: []string{prompt.RichCards, prompt.RichLists, prompt.RichImages}, Forms: []string{"contact"}, AskFile: true}
	c := prompt.NewContract(opts)
	var names []string
	for _, tool := range c.Tools {
		names = append(names, tool.Name)
		if !json.Valid(tool.Parameters) {
			t.Errorf("%s: parameters are not JSON", tool.Name)
		}
	}
	if want := []string{prompt.HandoffTool, prompt.CardsTool, prompt.ListTool, prompt.ImagesTool, prompt.FormTool, prompt.FileTool}; !slices.Equal(names, want) {
		t.Errorf("tools %v, want %v", names, want)
	}
	opts.Format, opts.Rich = kommbridge.FormatText, nil
	c = prompt.NewContract(opts)
	for _, marker := range []string{"[FORM:name]", prompt.FileMarker, "contact"} {
		if !strings.Contains(c.Instructions, marker) {
			t.Errorf("text instructions lack %s", marker)
		}
	}
}

// A request's tools are its own: what one event adds to them (a bot's
// actions) or takes out never reaches the contract every event shares.
func TestRequestToolsAreTheirOwn(t *testing.T) {
	c := prompt.NewContract(prompt.ContractOptions{Format: kommbridge.FormatTools, Rich: []string{prompt.RichCards, prompt.RichLists, prompt.RichImages}, Forms: []string{"contact"}})
	shared := slices.Clone(c.Tools)
	var a, b llm.Request
	c.Apply(&a)
	a.Tools = append(a.Tools, llm.Tool{Name: "order_status"})
	c.Apply(&b)
	b.Tools = append(b.Tools, llm.Tool{Name: "cancel_order"})
	if got := a.Tools[len(a.Tools)-1].Name; got != "order_status" {
		t.Errorf("one request's tool was overwritten by another's: %s", got)
	}
	names := func(tools []llm.Tool) (out []string) {
		for _, tool := range tools {
			out = append(out, tool.Name)
		}
		return out
	}
	if got, want := names(c.Tools[:cap(c.Tools)]), names(shared); !slices.Equal(got[:len(want)], want) || slices.ContainsFunc(got[len(want):], func(n string) bool { return n != "" }) {
		t.Errorf("the contract's tools changed: %v", got)
	}
}
