package adapter_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// Every answer pinned in a golden file passes a validator written from
// Kommunicate's documented payload fields (../shared/kommunicate.md, the
// Web SDK's rich message samples): the metadata keys Kommunicate knows,
// each template's required fields and types, https URLs, one
// post-back submit per form. Every template kommbridge produces appears in
// some golden file.
func TestPayloadContract(t *testing.T) {
	var files []string
	err := filepath.WalkDir("testdata", func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, ".golden") && !strings.HasPrefix(filepath.Base(path), "request_") {
			files = append(files, path)
		}
		return err
	})
	if err != nil || len(files) < 40 {
		t.Fatalf("golden files: %d, %v", len(files), err)
	}
	seen := map[string]bool{}
	for _, path := range files {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []map[string]any
		if err := json.Unmarshal(b, &msgs); err != nil {
			t.Errorf("%s: not an array of messages: %v", path, err)
			continue
		}
		for i, m := range msgs {
			for _, problem := range validMessage(m, seen) {
				t.Errorf("%s[%d]: %s", path, i, problem)
			}
		}
	}
	for _, id := range []string{"3", "6", "7", "9", "10", "11", "12"} {
		if !seen[id] {
			t.Errorf("no golden file holds template %s", id)
		}
	}
}

// The validator itself refuses what Kommunicate would not show.
func TestPayloadValidatorRefuses(t *testing.T) {
	for _, bad := range []string{
		`{"text":"no message key"}`,
		`{"message":"x","metadata":{"contentType":300,"templateId":"6","payload":[]}}`,
		`{"message":"x","metadata":{"contentType":"300","templateId":"8","payload":[]}}`,
		`{"message":"x","metadata":{"contentType":"300","templateId":"6","payload":[{"title":"A"}]}}`,
		`{"message":"x","metadata":{"contentType":"300","templateId":"3","payload":[{"type":"link","url":"http://a.example","name":"A","openLinkInNewTab":true}]}}`,
		`{"message":"x","metadata":{"contentType":"300","templateId":"10","payload":[{"title":"A","header":{"imgSrc":"javascript:x"}}]}}`,
		`{"message":"x","metadata":{"contentType":"300","templateId":"12","payload":[{"type":"text","name":"a"}]}}`,
		`{"message":"x","metadata":{"KM_ASSIGN_TEAM":"1"}}`,
		`{"message":"x","metadata":{"actionRequest":"closeIt"}}`,
		`{"message":"x","metadata":{"KM_SOMETHING":"1"}}`,
		`{"message":"x","metadata":{"contentType":"300","templateId":"12","payload":[{"type":"radio","name":"a","title":"A","options":[{"label":"x","value":"x"}],"validation":{"regex":"x","errorText":"e"}},{"type":"submit","label":"S","requestType":"postBackToBotPlatform"}]}}`,
		`{"message":"x","metadata":{"contentType":"300","templateId":"12","payload":[{"type":"dropdown","name":"a","label":"A","options":[{"label":"x","value":"x"}]},{"type":"submit","label":"S","requestType":"postBackToBotPlatform"}]}}`,
		`{"message":"x","metadata":{"contentType":"300","templateId":"6","payload":[{"title":"<b>A</b>","message":"A"}]}}`,
		`{"message":"x","metadata":{"contentType":"300","templateId":"3","payload":[{"type":"link","url":"https://a.example","name":"&lt;img src=x onerror=y&gt;","openLinkInNewTab":true}]}}`,
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(bad), &m); err != nil {
			t.Fatal(err)
		}
		if problems := validMessage(m, map[string]bool{}); len(problems) == 0 {
			t.Errorf("accepted %s", bad)
		}
	}
}

func validMessage(m map[string]any, seen map[string]bool) []string {
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if _, ok := m["message"].(string); !ok {
		bad("message is not a string")
	}
	for k := range m {
		if k != "message" && k != "metadata" {
			bad("unknown key %q", k)
		}
	}
	md, ok := m["metadata"].(map[string]any)
	if !ok {
		if m["metadata"] != nil {
			bad("metadata is not an object")
		}
		return p
	}
	known := []string{"contentType", "templateId", "payload", "KM_ASSIGN_TO", "KM_ASSIGN_TEAM", "actionRequest", "KM_ENABLE_ATTACHMENT"}
	for k := range md {
		if !slices.Contains(known, k) {
			bad("metadata key %q is not one Kommunicate documents", k)
		}
	}
	if v, ok := md["KM_ASSIGN_TO"]; ok {
		if _, ok := v.(string); !ok {
			bad("KM_ASSIGN_TO is not a string")
		}
	}
	if v, ok := md["KM_ASSIGN_TEAM"]; ok {
		if s, _ := v.(string); s == "" || md["KM_ASSIGN_TO"] == nil {
			bad("KM_ASSIGN_TEAM must be a team id sent with KM_ASSIGN_TO")
		}
	}
	if v, ok := md["actionRequest"]; ok && v != "resolveConversation" {
		bad("actionRequest %v", v)
	}
	if v, ok := md["KM_ENABLE_ATTACHMENT"]; ok {
		if _, ok := v.(bool); !ok {
			bad("KM_ENABLE_ATTACHMENT is not a boolean")
		}
	}
	for _, problem := range markupProblems(md) {
		bad("%s", problem)
	}
	ct, hasCT := md["contentType"]
	if !hasCT {
		if md["templateId"] != nil || md["payload"] != nil {
			bad("a template without contentType")
		}
		return p
	}
	id, _ := md["templateId"].(string)
	if ct != "300" {
		bad("contentType %v, want the string \"300\"", ct)
	}
	seen[id] = true
	v := validator{bad: bad}
	switch payload := md["payload"]; id {
	case "6":
		v.each(payload, "quick reply", func(o map[string]any) {
			v.text(o, "title")
			v.text(o, "message")
			if r, ok := o["replyMetadata"]; ok {
				if _, ok := r.(map[string]any); !ok {
					bad("replyMetadata is not an object")
				}
			}
		})
	case "3":
		v.each(payload, "link", func(o map[string]any) {
			v.equal(o, "type", "link")
			v.https(o, "url", true)
			v.text(o, "name")
		})
	case "11":
		v.each(payload, "button", func(o map[string]any) {
			v.text(o, "name")
			a := v.object(o, "action")
			v.action("button", a, a, "quickReply", "message")
		})
	case "7":
		l, _ := payload.(map[string]any)
		if l == nil {
			bad("list payload is not an object")
			return p
		}
		v.https(l, "headerImgSrc", false)
		v.each(l["elements"], "list element", func(o map[string]any) {
			v.text(o, "title")
			v.https(o, "imgSrc", false)
			a := v.object(o, "action")
			v.action("list", a, a, "quick_reply", "text")
		})
	case "9":
		v.each(payload, "image", func(o map[string]any) { v.https(o, "url", true) })
	case "10":
		v.each(payload, "card", func(o map[string]any) {
			v.text(o, "title")
			if h, ok := o["header"]; ok {
				hm, _ := h.(map[string]any)
				v.https(hm, "imgSrc", true)
			}
			if bs, ok := o["buttons"]; ok {
				v.each(bs, "card button", func(b map[string]any) {
					v.text(b, "name")
					a := v.object(b, "action")
					v.action("card", a, v.object(a, "payload"), "quickReply", "message")
				})
			}
		})
	case "12":
		submits := 0
		v.each(payload, "form field", func(o map[string]any) {
			switch o["type"] {
			case "submit":
				submits++
				v.equal(o, "requestType", "postBackToBotPlatform")
				if o["message"] == nil && o["label"] == nil {
					bad("submit without message or label")
				}
			case "text", "password", "hidden":
				v.text(o, "name")
			case "textarea":
				v.text(o, "name")
				v.text(o, "title") // its caption
			case "radio", "checkbox", "dropdown":
				v.text(o, "name")
				v.text(o, "title") // their caption
				v.each(o["options"], "option", func(op map[string]any) {
					v.text(op, "label")
					if _, ok := op["value"].(string); !ok {
						bad("option value is not a string")
					}
				})
				if o["type"] == "radio" && o["validation"] != nil {
					bad("a radio field with validation: the widget's radio template then moves the submit out of the form")
				}
			default:
				bad("form field type %v", o["type"])
			}
			if val, ok := o["validation"]; ok {
				vm, _ := val.(map[string]any)
				if _, err := regexp.Compile(fmt.Sprint(vm["regex"])); err != nil || vm["errorText"] == nil {
					bad("validation %v", val)
				}
			}
		})
		if submits != 1 {
			bad("a form has %d submit buttons, want 1", submits)
		}
	default:
		bad("templateId %q is not one kommbridge may send", id)
	}
	return p
}

type validator struct{ bad func(string, ...any) }

func (v validator) each(list any, what string, f func(map[string]any)) {
	items, ok := list.([]any)
	if !ok || len(items) == 0 {
		v.bad("%s payload is not a non-empty array", what)
		return
	}
	for _, it := range items {
		o, ok := it.(map[string]any)
		if !ok {
			v.bad("a %s is not an object", what)
			continue
		}
		f(o)
	}
}

// action checks a button's action: a link with an https url, or a reply
// of type reply with its text in the key text; what each needs stands in
// at (the action itself, or its payload in cards).
func (v validator) action(what string, a, at map[string]any, reply, text string) {
	switch a["type"] {
	case "link":
		v.https(at, "url", true)
	case reply:
		v.text(at, text)
	default:
		v.bad("%s action type %v", what, a["type"])
	}
}

func (v validator) object(o map[string]any, key string) map[string]any {
	m, ok := o[key].(map[string]any)
	if !ok {
		v.bad("%s is not an object", key)
	}
	return m
}

func (v validator) text(o map[string]any, key string) {
	if s, ok := o[key].(string); !ok || strings.TrimSpace(s) == "" {
		v.bad("%s is not a non-empty string", key)
	}
}

func (v validator) equal(o map[string]any, key, want string) {
	if o[key] != want {
		v.bad("%s is %v, want %q", key, o[key], want)
	}
}

func (v validator) https(o map[string]any, key string, required bool) {
	raw, ok := o[key]
	if !ok {
		if required {
			v.bad("%s is missing", key)
		}
		return
	}
	s, _ := raw.(string)
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		v.bad("%s %q is not an https URL", key, s)
	}
}

// markupProblems are the strings of a metadata object (nested payloads
// included, an operator's regex left out) that break the markup rule.
func markupProblems(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k != "regex" {
				out = append(out, markupProblems(e)...)
			}
		}
	case []any:
		for _, e := range x {
			out = append(out, markupProblems(e)...)
		}
	case string:
		if why := markupSafe(x); why != "" {
			out = append(out, fmt.Sprintf("%q: %s", x, why))
		}
	}
	return out
}
