package adapter_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/text/unicode/norm"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/adapter"
	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// hostile are strings a model may be talked into writing (by a user, an
// uploaded document, a fetched page) to get markup into the widget: tags,
// references decoded once or many times, mixed case, look-alikes of "<",
// attribute break-outs, nesting, script URLs.
var hostile = []string{
	`<img src=x onerror=alert(1)>`,
	`<IMG SRC=x OnErRoR=alert(1)>`,
	`&lt;img src=x onerror=alert(1)&gt;`,
	`&amp;lt;img src=x onerror=alert(1)&amp;gt;`,
	`&amp;amp;amp;lt;img src=x onerror=alert(1)&amp;amp;amp;gt;`,
	`&#60;img src=x onerror=alert(1)&#62;`,
	`&#x3C;img src=x onerror=alert(1)&#x3E;`,
	`&#x3cimg src=x onerror=alert(1)&#x3e`,
	`&ltimg src=x onerror=alert(1)&gt`,
	`＜img src=x onerror=alert(1)＞`,
	`﹤img src=x onerror=alert(1)﹥`,
	`‹img src=x onerror=alert(1)›`,
	`〈img src=x onerror=alert(1)〉`,
	`<scr<script>ipt>alert(1)</scr</script>ipt>`,
	`<<img src=x onerror=alert(1)>img src=x onerror=alert(1)>`,
	`&l<b></b>t;img src=x onerror=alert(1)&g<i></i>t;`,
	`&l` + "\x01" + `t;img src=x onerror=alert(1)&gt;`,
	`<svg/onload=alert(1)>`,
	`<img src=x onerror=alert(1)`,
	`" onmouseover="alert(1)`,
	`' onmouseover='alert(1)`,
	`&quot; onmouseover=&quot;alert(1)`,
	`&#34; autofocus onfocus=&#34;alert(1)`,
	"` onmouseover=alert(1)",
	`＂ onmouseover=＂alert(1)`,
	`<a href="javascript:alert(1)">x</a>`,
	`Buy <b>now</b> & save 10% — "best" deal`,
}

// hostileURLs are links a model may write, none of which may reach a
// payload: script URLs however spelled, http, attribute break-outs,
// encoded quotes, look-alikes.
var hostileURLs = []string{
	`javascript:alert(1)`,
	`JaVaScRiPt:alert(1)`,
	`java&#x09;script:alert(1)`,
	`&#106;avascript:alert(1)`,
	`data:text/html,<script>alert(1)</script>`,
	`http://acme.example/x.png`,
	`https://acme.example/x.png" onerror="alert(1)`,
	`https://acme.example/x.png' onerror='alert(1)`,
	`https://acme.example/&quot;onerror=alert(1)`,
	`https://acme.example/&amp;quot;onerror=alert(1)`,
	`https://acme.example/＂onerror=alert(1)`,
	`https://acme.example/<img src=x onerror=alert(1)>`,
	`https://acme.example/x y`,
	`https://user:pw@acme.example/`,
	`//acme.example/x.png`,
}

// angleLookalikes read as "<" or ">" (some fold to them).
const angleLookalikes = "‹›〈〉〈〉⟨⟩❬❭❮❯˂˃ᐸᐳ≮≯﹤﹥＜＞"

// markupSafe says why s is not safe in a rich field, "" when it is: it
// must hold no markup character as written, once decoded, or once folded;
// and put into the places the widget puts such fields (element text, a
// double- or single-quoted attribute, each as written and decoded once
// more), it must parse to that one element, with no handler attribute.
func markupSafe(s string) string {
	decoded := kommbridge.Unescape(s)
	for _, v := range []string{s, decoded, norm.NFKC.String(decoded)} {
		if strings.ContainsAny(v, "<>\"'`") {
			return fmt.Sprintf("a markup character in %q", v)
		}
		if strings.ContainsAny(v, angleLookalikes) {
			return fmt.Sprintf("a look-alike of an angle bracket in %q", v)
		}
	}
	for _, v := range []string{s, decoded} {
		for _, doc := range []string{`<div>` + v + `</div>`, `<div title="` + v + `">x</div>`, `<div title='` + v + `'>x</div>`} {
			if why := oneDiv(doc); why != "" {
				return why + " in " + doc
			}
		}
	}
	return ""
}

// oneDiv parses doc as a browser does and says what it holds beyond one
// div element with at most a title attribute.
func oneDiv(doc string) string {
	root, err := html.Parse(strings.NewReader(doc))
	if err != nil {
		return err.Error()
	}
	divs, why := 0, ""
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "html", "head", "body":
			case "div":
				divs++
			default:
				why = "an element <" + n.Data + ">"
			}
			for _, a := range n.Attr {
				if a.Key != "title" {
					why = "an attribute " + a.Key
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(root)
	if why == "" && divs != 1 {
		why = fmt.Sprintf("%d divs", divs)
	}
	return why
}

// urlKeys are the payload keys that hold a URL the widget opens or loads.
var urlKeys = map[string]bool{"url": true, "imgSrc": true, "headerImgSrc": true}

// checkPayload walks a rendered message's metadata and reports every
// string that breaks the markup rule, and every URL that is not https.
// The top-level message text is left out: the widget sanitises it.
func checkPayload(t *testing.T, where string, md any) {
	t.Helper()
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				if k == "regex" {
					continue // the operator's pattern, escaped by the widget's template
				}
				if k == "payload" {
					if s, ok := e.(string); ok && (strings.HasPrefix(s, "[") || strings.HasPrefix(s, "{")) {
						// The send API's payload is a JSON string.
						var inner any
						if err := json.Unmarshal([]byte(s), &inner); err != nil {
							t.Errorf("%s: %s.payload is not JSON: %v", where, path, err)
						}
						walk(path+".payload", inner)
						continue
					}
				}
				walk(path+"."+k, e)
				if s, ok := e.(string); ok && urlKeys[k] && !strings.HasPrefix(s, "https://") {
					t.Errorf("%s: %s.%s = %q is not an https URL", where, path, k, s)
				}
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		case string:
			if why := markupSafe(x); why != "" {
				t.Errorf("%s: %s = %q: %s", where, path, x, why)
			}
		}
	}
	walk("metadata", md)
}

// The checker itself refuses what it must: each hostile string as it
// stands, and a harmless one passes.
func TestMarkupCheckerRefuses(t *testing.T) {
	for _, s := range append(hostile[:len(hostile)-1], hostileURLs[6:12]...) {
		if markupSafe(s) == "" {
			t.Errorf("the checker passed %q", s)
		}
	}
	if why := markupSafe("Buy now & save 10% — “best” deal"); why != "" {
		t.Errorf("the checker refused plain text: %s", why)
	}
}

// Every string kommbridge puts into a rich payload is safe for the
// widget's raw insertion, whatever the model wrote, on every channel and
// on the send API's path: hostile names, titles, descriptions, captions,
// quick replies, Markdown link texts and URLs go through every template
// (quick replies 6, links 3, mixed 11, list 7, images 9, cards 10, and
// WhatsApp's list of quick replies).
func TestHostileRichFields(t *testing.T) {
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	for i, bad := range hostile {
		badURL := hostileURLs[i%len(hostileURLs)]
		text := "See [" + bad + "](https://acme.example/a) and [x](" + badURL + ") and https://acme.example/b"
		reply := `{"reply":` + quote(text) + `,"confidence":0.9,"handoff":false,"handoff_reason":"","team":"",` +
			`"suggested_replies":[` + quote(bad) + `,"Track",` + quote(bad+"2") + `,"Returns"],` +
			`"cards":[{"title":` + quote(bad) + `,"subtitle":` + quote(bad) + `,"image_url":` + quote(badURL) + `,"buttons":[` +
			`{"label":` + quote(bad) + `,"url":"https://acme.example/buy","reply":""},{"label":` + quote(bad) + `,"url":` + quote(badURL) + `,"reply":""},` +
			`{"label":"More","url":"","reply":` + quote(bad) + `}]},{"title":"Plain","subtitle":"","image_url":"https://acme.example/p.png","buttons":[]}],` +
			`"list":{"header":` + quote(bad) + `,"items":[{"title":` + quote(bad) + `,"description":` + quote(bad) + `,"reply":` + quote(bad) + `},{"title":"Billing","description":"","reply":""}]},` +
			`"images":[{"url":"https://acme.example/i.png","caption":` + quote(bad) + `},{"url":` + quote(badURL) + `,"caption":"x"}]}`
		for _, channel := range []string{"web", "whatsapp", "messenger"} {
			t.Run(fmt.Sprintf("%d/%s", i, channel), func(t *testing.T) {
				h := newHarness(t, botsWith("json_object", []string{"rich: [cards, lists, images]", "link_buttons: true",
					"suggested_replies: {max: 5}", "channel: " + channel}, nil), "")
				h.model.Enqueue(llmtest.Reply{Content: reply})
				var msgs []map[string]any
				if err := json.Unmarshal(h.postRaw(msg("hi")), &msgs); err != nil {
					t.Fatal(err)
				}
				rich := 0
				for j, m := range msgs {
					if m["metadata"] != nil {
						rich++
						checkPayload(t, fmt.Sprintf("message %d", j), m["metadata"])
					}
				}
				if rich == 0 {
					t.Errorf("no rich part was rendered: %v", msgs)
				}
			})
		}
		// The send API's bodies, for answers delivered later.
		m := kommbridge.Message{Text: "x", QuickReplies: []string{bad, "Track"}, Links: []kommbridge.Link{{Name: bad, URL: "https://acme.example/a"}, {Name: "y", URL: badURL}},
			Cards:  []kommbridge.Card{{Title: bad, Subtitle: bad, ImageURL: badURL, Buttons: []kommbridge.Button{{Name: bad, URL: badURL}, {Name: bad, Reply: bad}}}},
			List:   &kommbridge.List{Header: bad, Items: []kommbridge.ListItem{{Title: bad, Description: bad, Reply: bad}}},
			Images: []kommbridge.Image{{URL: badURL, Caption: bad}, {URL: "https://acme.example/i.png", Caption: bad}},
			Form: &kommbridge.Form{Name: "f", Text: bad, Submit: bad, Fields: []kommbridge.FormField{{Name: "a", Label: bad, Type: "text", Placeholder: bad, Error: bad, Regex: `\S`},
				{Name: "b", Label: bad, Type: "radio", Options: []string{bad, "ok"}, Required: true, Error: bad}, {Name: "c", Label: bad, Type: "dropdown", Options: []string{bad}, Required: true, Error: bad},
				{Name: "d", Type: "hidden", Value: bad}}}}
		for _, channel := range []string{kommbridge.ChannelWeb, kommbridge.ChannelWhatsApp} {
			bodies, err := adapter.APIBodies("deliver/x/0", "bot", "1", channel, m)
			if err != nil {
				t.Fatal(err)
			}
			for j, b := range bodies {
				var body map[string]any
				if err := json.Unmarshal(b, &body); err != nil {
					t.Fatal(err)
				}
				checkPayload(t, fmt.Sprintf("%d: send API body %d on %s", i, j, channel), body["metadata"])
			}
		}
	}
}

// plain keeps what a user should read: ordinary text, with its
// ampersands, percent signs and accents, quotes made typographic.
func TestPlainKeepsText(t *testing.T) {
	m := kommbridge.Message{Text: "x", QuickReplies: []string{`Fish & Chips — 10% off, "today"`, "Crème brûlée 🍮", "<b>Bold</b> choice", "AT&T", "5 < 7"}}
	var got []string
	for _, km := range adapter.Render(kommbridge.Reply{Messages: []kommbridge.Message{m}}) {
		got = append(got, km.Buttons()...)
	}
	want := []string{"Fish & Chips — 10% off, ”today”", "Crème brûlée 🍮", "Bold choice", "AT&T", "5 7"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("buttons %q, want %q", got, want)
	}
}

// Whatever a model writes into a quick reply, the button holds no
// markup.
func FuzzPlain(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, km := range adapter.Render(kommbridge.Reply{Messages: []kommbridge.Message{{Text: "x", QuickReplies: []string{s}}}}) {
			for _, b := range km.Buttons() {
				if why := markupSafe(b); why != "" {
					t.Fatalf("%q became %q: %s", s, b, why)
				}
			}
		}
	})
}
