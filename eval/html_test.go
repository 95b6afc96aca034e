package eval_test

import (
	"context"
	"image"
	"image/color"
	_ "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge/eval"
	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// The HTML report, opened in a real headless browser (Debian's chromium):
// the page renders the failing conversation as chat bubbles with its
// buttons, as the DOM and the screenshot's pixels both show. The report
// is one file with no external assets.
func TestHTMLReportInBrowser(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is needed (apt-get install chromium; scripts/test installs it)")
	}
	b, model, _ := pipeline(t)
	model.Default(func(llmtest.Request) llmtest.Reply {
		return reply("Your order shipped on Monday.", false, "", "Track my order", "Returns")
	})
	s := suite(t, `
cases:
  - name: wants a person
    turns:
      - user: "Where is my order?"
        expect: {handoff: true}
  - name: passes
    turns:
      - user: "hello"
`)
	sum := eval.Summarize("config.yaml", eval.RunSuites(context.Background(), b, s, eval.Options{}), nil, 1)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := sum.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	html, _ := os.ReadFile(page)
	for _, external := range []string{"<script src", "<link", `src="http`, `href="http`, "url(http", "@import"} {
		if strings.Contains(string(html), external) {
			t.Errorf("the report refers to an external asset (%s)", external)
		}
	}

	chrome := func(args ...string) []byte {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
			"--disable-component-update", "--disable-sync", "--hide-scrollbars", "--user-data-dir=" + t.TempDir()}
		out, err := exec.CommandContext(ctx, browser, append(base, args...)...).Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return out
	}
	dom := string(chrome("--dump-dom", "file://"+page))
	for what, want := range map[string]int{`class="bubble user"`: 1, `class="bubble bot"`: 1, `class="button"`: 2, `class="failure"`: 1} {
		if got := strings.Count(dom, what); got != want {
			t.Errorf("the rendered page has %d %s, want %d", got, what, want)
		}
	}
	for _, text := range []string{"Where is my order?", "Your order shipped on Monday.", "Track my order", "want a handoff, got none"} {
		if !strings.Contains(dom, text) {
			t.Errorf("the rendered page lacks %q", text)
		}
	}

	shot := filepath.Join(dir, "report.png")
	chrome("--screenshot="+shot, "--window-size=1000,1400", "file://"+page)
	img := decodePNG(t, shot)
	// The user's bubble is blue (#1d4ed8), the buttons are outlined in
	// violet (#7c3aed); no other part of the page has those colours.
	blue, violet := count(img, color.RGBA{0x1d, 0x4e, 0xd8, 0xff}), count(img, color.RGBA{0x7c, 0x3a, 0xed, 0xff})
	if blue < 2000 || violet < 200 {
		t.Errorf("screenshot: %d blue bubble pixels, %d violet button pixels; the bubbles or buttons did not render", blue, violet)
	}
	if !t.Failed() {
		t.Logf("screenshot %s: %d bubble pixels, %d button pixels", shot, blue, violet)
	}
}

// The rich parts of a failing answer drawn as the widget shows them (the
// DOM of the page chromium renders): cards, a list, an image (by its URL:
// the report loads nothing) and a form with its fields.
func TestHTMLDrawsRichParts(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is needed (apt-get install chromium; scripts/test installs it)")
	}
	b, model, _ := pipelineWith(t, `
bots:
  - id: "*"
    reply_format: json_object
    rich: [cards, lists, images]
    forms: {contact: {text: "Your details, please.", fields: [{name: email, label: Email, required: true}, {name: topic, label: Topic, type: radio, options: [Billing, Returns]}]}}
`)
	model.Default(func(llmtest.Request) llmtest.Reply {
		return llmtest.Reply{Content: `{"reply":"Our plans.","confidence":0.9,` +
			`"cards":[{"title":"Pro plan","subtitle":"$10 a month","image_url":"https://acme.example/pro.png","buttons":[{"label":"Buy Pro","url":"https://acme.example/buy"}]},{"title":"Team plan"}],` +
			`"list":{"header":"Or pick a topic","items":[{"title":"Billing questions","description":"Invoices"}]},` +
			`"images":[{"url":"https://acme.example/compare.png","caption":"Side by side"}],"form":"contact"}`}
	})
	s := suite(t, "cases:\n  - name: plans\n    turns: [{user: \"plans?\", expect: {handoff: true}}]\n")
	sum := eval.Summarize("config.yaml", eval.RunSuites(context.Background(), b, s, eval.Options{}), nil, 1)
	page := filepath.Join(t.TempDir(), "report.html")
	f, _ := os.Create(page)
	if err := sum.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(), "--dump-dom", "file://"+page).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	dom := string(out)
	if shot := os.Getenv("KOMMBRIDGE_SHOT"); shot != "" {
		exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
			"--user-data-dir="+t.TempDir(), "--screenshot="+shot, "--window-size=1100,1300", "file://"+page).Run()
	}
	for what, want := range map[string]int{`class="card"`: 2, `class="list"`: 1, `class="image"`: 1, `class="form"`: 1, `class="cbtn"`: 1} {
		if got := strings.Count(dom, what); got != want {
			t.Errorf("the rendered page has %d %s, want %d", got, what, want)
		}
	}
	for _, text := range []string{"Pro plan", "$10 a month", "Buy Pro", "Or pick a topic", "Billing questions", "Side by side", "https://acme.example/compare.png", "Your details, please.", "Email *", "Billing · Returns"} {
		if !strings.Contains(dom, text) {
			t.Errorf("the rendered page lacks %q", text)
		}
	}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// count is the number of pixels within a small distance of c.
func count(img image.Image, c color.RGBA) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r>>8, c.R) && near(g>>8, c.G) && near(bl>>8, c.B) {
				n++
			}
		}
	}
	return n
}

func near(a uint32, b uint8) bool {
	d := int(a) - int(b)
	return d > -4 && d < 4
}
