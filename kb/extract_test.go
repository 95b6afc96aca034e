package kb

import (
	"os"
	"strings"
	"testing"
)

// A help center page loses its navigation, banners and footer and keeps
// its article: headings, paragraphs and its table, with the title and
// canonical URL it declares.
func TestHTMLKeepsTheArticle(t *testing.T) {
	data, err := os.ReadFile("testdata/helpcenter/articles/flying-with-gear.html")
	if err != nil {
		t.Fatal(err)
	}
	a := fromHTML(data, "https://help.acme.example/articles/flying-with-gear.html")
	if a.URL != "https://help.acme.example/flying-with-gear" || a.Title != "Flying with outdoor gear | ACME Help Center" {
		t.Errorf("url %q, title %q", a.URL, a.Title)
	}
	for _, want := range []string{"# Flying with outdoor gear", "## Stoves and fuel", "Gas canisters and liquid fuel are never allowed",
		"| Item | Cabin | Checked luggage |", "| Power bank up to 100 Wh | yes | no |"} {
		if !strings.Contains(a.Text, want) {
			t.Errorf("missing %q in:\n%s", want, a.Text)
		}
	}
	for _, gone := range []string{"cookies", "Orders and delivery", "Search the help center", "Home /", "In this section",
		"Was this article helpful", "Related articles", "Subscribe", "Imprint", "dataLayer", "position:fixed"} {
		if strings.Contains(a.Text, gone) {
			t.Errorf("kept boilerplate %q:\n%s", gone, a.Text)
		}
	}
}

// Front matter names a Markdown file's URL and title; without it the
// first heading is the title.
func TestMarkdownFrontMatter(t *testing.T) {
	a := fromMarkdown([]byte("---\ntitle: \"Returns, the short version\"\nurl: https://help.acme.example/r\n---\n# Returns\n\nThirty days.\n"), "https://x/returns", "returns.md")
	if a.Title != "Returns, the short version" || a.URL != "https://help.acme.example/r" || strings.Contains(a.Text, "url:") {
		t.Errorf("%+v", a)
	}
	b := fromMarkdown([]byte("Intro.\n\n# Damaged items\n\nPhotos."), "https://x/d", "damaged-items.md")
	if b.Title != "Damaged items" {
		t.Errorf("title %q", b.Title)
	}
	if c := fromMarkdown([]byte("No heading."), "", "gift-card_rules.txt"); c.Title != "Gift card rules" {
		t.Errorf("title from name %q", c.Title)
	}
}

// Passages follow the headings: a section starts a new passage once the
// one being filled is long enough, each passage says where it stands, a
// long section is cut with an overlap, and a long table is cut between
// rows, each part under the header.
func TestChunks(t *testing.T) {
	para := func(words int) string { return strings.TrimSpace(strings.Repeat("word ", words)) }
	var rows []string
	for i := 0; i < 300; i++ {
		rows = append(rows, "| row | a b c d e |")
	}
	text := "# Shipping\n\nIntro " + para(150) + "\n\n## Rates\n\n" + para(50) + "\n\n### Express\n\nShort.\n\n## Countries\n\n| Country | Price |\n| --- | --- |\n" +
		strings.Join(rows, "\n") + "\n\n## Long\n\n" + para(500) + "\n\nLast short paragraph.\n\n" + para(500)
	cs := chunks(Article{URL: "https://h/shipping", Title: "Shipping", Text: text}, "shipping")
	if len(cs) < 5 {
		t.Fatalf("%d passages", len(cs))
	}
	if cs[0].Heading != "" || !strings.Contains(cs[0].Text, "## Rates") || !strings.Contains(cs[0].Text, "### Express") {
		t.Errorf("the short sections join the intro: %q / %.80q", cs[0].Heading, cs[0].Text)
	}
	var table []Chunk
	for _, c := range cs {
		if tokens(c.Text) > maxTokens+overlapTokens {
			t.Errorf("%s has %d tokens", c.ID, tokens(c.Text))
		}
		if c.Heading == "Countries" {
			table = append(table, c)
		}
		if c.ID == "" || c.Hash == "" || c.URL != "https://h/shipping" {
			t.Errorf("%+v", c)
		}
	}
	if len(table) < 2 {
		t.Fatalf("the long table is one passage")
	}
	for _, c := range table {
		if !strings.HasPrefix(c.Text, "| Country | Price |\n| --- | --- |\n| row") {
			t.Errorf("a part of the table without its header: %.60q", c.Text)
		}
	}
	last := cs[len(cs)-1]
	if last.Heading != "Long" || !strings.HasPrefix(last.Text, "Last short paragraph.") {
		t.Errorf("the cut section does not carry its heading and overlap: %q %.60q", last.Heading, last.Text)
	}
}

func TestRobots(t *testing.T) {
	r := parseRobots("User-agent: Googlebot\nDisallow: /\n\nUser-agent: *\nDisallow: /private/\nAllow: /private/faq\nDisallow: /*.pdf$\n")
	for path, want := range map[string]bool{"/a": true, "/private/x": false, "/private/faq": true, "/": true} {
		if got := r.allowed(path); got != want {
			t.Errorf("%s: %v", path, got)
		}
	}
	own := parseRobots("User-agent: *\nDisallow: /\n\nUser-agent: kommbridge\nDisallow:\n")
	if !own.allowed("/anything") {
		t.Error("kommbridge's own group is not read")
	}
}

// The floor keeps answerable questions in (at most 5% out) and takes as
// many unanswerable ones out as that allows.
func TestCalibrate(t *testing.T) {
	answerable := []float64{0.2, 0.5, 0.55, 0.6, 0.6, 0.7, 0.7, 0.8, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9}
	unanswerable := []float64{0.1, 0.3, 0.4, 0.52}
	f := Calibrate(answerable, unanswerable)
	if f <= 0.4 || f > 0.5 {
		t.Errorf("floor %.3f: want one between 0.4 and 0.5 (0.2 out of 20 answerable, 3 of 4 unanswerable)", f)
	}
	if Calibrate(nil, nil) != 0 {
		t.Error("no scores, no floor")
	}
}
