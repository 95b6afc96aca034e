package kb

import (
	"bytes"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// An Article is one page of the help center as text: Markdown headings
// ("## Returns") mark its sections, tables stay Markdown tables.
type Article struct {
	URL   string
	Title string
	Text  string
}

var frontMatter = regexp.MustCompile(`(?s)\A---\r?\n(.*?)\r?\n---\r?\n?`)

// fromMarkdown reads a Markdown (or plain text) file. Front matter's url:
// and title: win over the URL and title derived from the path; else the
// first "# " heading is the title.
func fromMarkdown(data []byte, url, name string) Article {
	a := Article{URL: url, Title: titleFromName(name)}
	text := string(bytes.ReplaceAll(data, []byte("\r\n"), []byte("\n")))
	if m := frontMatter.FindStringSubmatch(text); m != nil {
		text = text[len(m[0]):]
		for _, line := range strings.Split(m[1], "\n") {
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			v = strings.Trim(strings.TrimSpace(v), `"'`)
			switch strings.TrimSpace(strings.ToLower(k)) {
			case "url":
				a.URL = v
			case "title":
				a.Title = v
			}
		}
		a.Text = text
		return a
	}
	for _, line := range strings.Split(text, "\n") {
		if t, ok := strings.CutPrefix(line, "# "); ok {
			a.Title = strings.TrimSpace(t)
			break
		}
	}
	a.Text = text
	return a
}

// titleFromName makes a title of a file name: "damaged-items.md" is
// "Damaged items".
func titleFromName(name string) string {
	base := strings.TrimSuffix(filepath.Base(name), filepath.Ext(name))
	base = strings.TrimSpace(strings.NewReplacer("-", " ", "_", " ").Replace(base))
	if base == "" {
		return name
	}
	return strings.ToUpper(base[:1]) + base[1:]
}

// boilerplate are the words of an element's id, class, role or label
// (split at spaces, hyphens and underscores) that mark navigation,
// banners and the like rather than the article.
var boilerplate = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields("cookie cookies consent gdpr banner breadcrumb breadcrumbs sidebar menu navbar nav navigation " +
		"footer header masthead newsletter subscribe share sharing social related pagination skip toc feedback rating " +
		"promo advert ads popup modal contentinfo complementary") {
		m[w] = true
	}
	return m
}()

func boilerplateWords(v string) bool {
	for _, w := range strings.FieldsFunc(strings.ToLower(v), func(r rune) bool { return r == ' ' || r == '-' || r == '_' }) {
		if boilerplate[w] {
			return true
		}
	}
	return false
}

// skipped elements hold no article text.
var skipped = map[atom.Atom]bool{
	atom.Script: true, atom.Style: true, atom.Noscript: true, atom.Nav: true, atom.Header: true, atom.Footer: true,
	atom.Aside: true, atom.Form: true, atom.Button: true, atom.Svg: true, atom.Iframe: true, atom.Template: true,
	atom.Select: true, atom.Input: true, atom.Dialog: true,
}

var tablePart = map[atom.Atom]bool{atom.Table: true, atom.Thead: true, atom.Tbody: true, atom.Tr: true, atom.Th: true, atom.Td: true,
	atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true}

// fromHTML reads a page: its <title> (or first h1) and canonical link,
// and the text of its main content (<main>, <article> or role=main, else
// the body) without navigation, headers, footers, cookie banners and the
// like; headings become Markdown headings and tables Markdown tables.
func fromHTML(data []byte, pageURL string) Article {
	doc, err := html.Parse(bytes.NewReader(data))
	a := Article{URL: pageURL}
	if err != nil {
		return a
	}
	var title, canonical string
	var main, body, article, h1 *html.Node
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.DataAtom {
			case atom.Title:
				if title == "" {
					title = textOf(n)
				}
			case atom.Link:
				if strings.EqualFold(attr(n, "rel"), "canonical") && canonical == "" {
					canonical = attr(n, "href")
				}
			case atom.Main:
				if main == nil {
					main = n
				}
			case atom.Article:
				if article == nil {
					article = n
				}
			case atom.Body:
				body = n
			case atom.H1:
				if h1 == nil {
					h1 = n
				}
			}
			if main == nil && strings.EqualFold(attr(n, "role"), "main") {
				main = n
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	root := main
	if root == nil {
		root = article
	}
	if root == nil {
		root = body
	}
	if root == nil {
		root = doc
	}
	a.Title = strings.TrimSpace(title)
	if a.Title == "" && h1 != nil {
		a.Title = textOf(h1)
	}
	if canonical != "" {
		if u := resolve(pageURL, canonical); u != "" {
			a.URL = u
		}
	}
	var w mdWriter
	w.node(root)
	a.Text = w.String()
	return a
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if strings.EqualFold(a.Key, key) {
			return a.Val
		}
	}
	return ""
}

// textOf is n's text, spaces collapsed.
func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		if n.Type == html.ElementNode && skipped[n.DataAtom] {
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// isBoilerplate reports whether n is navigation, a banner or the like;
// tables and headings are always content.
func isBoilerplate(n *html.Node) bool {
	switch {
	case skipped[n.DataAtom]:
		return true
	case tablePart[n.DataAtom]:
		return false
	}
	for _, k := range []string{"id", "class", "role", "aria-label"} {
		if v := attr(n, k); v != "" && boilerplateWords(v) {
			return true
		}
	}
	return strings.EqualFold(attr(n, "aria-hidden"), "true") || attr(n, "hidden") != ""
}

// mdWriter writes an HTML tree as Markdown-like text.
type mdWriter struct {
	b    strings.Builder
	line strings.Builder
}

func (w *mdWriter) String() string {
	w.flush()
	return strings.TrimSpace(w.b.String()) + "\n"
}

// flush ends the line being written as a paragraph.
func (w *mdWriter) flush() {
	if s := strings.Join(strings.Fields(w.line.String()), " "); s != "" {
		w.b.WriteString(s)
		w.b.WriteString("\n\n")
	}
	w.line.Reset()
}

func (w *mdWriter) node(n *html.Node) {
	switch n.Type {
	case html.TextNode:
		w.line.WriteString(n.Data)
		return
	case html.ElementNode:
		if isBoilerplate(n) {
			return
		}
		switch n.DataAtom {
		case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
			w.flush()
			if t := textOf(n); t != "" {
				level := int(n.DataAtom.String()[1] - '0')
				w.b.WriteString(strings.Repeat("#", level) + " " + t + "\n\n")
			}
			return
		case atom.Table:
			w.flush()
			w.table(n)
			return
		case atom.Li:
			w.flush()
			w.line.WriteString("- ")
		case atom.Br:
			w.line.WriteString(" ")
			return
		case atom.P, atom.Div, atom.Section, atom.Ul, atom.Ol, atom.Pre, atom.Blockquote, atom.Dl, atom.Dt, atom.Dd:
			w.flush()
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.node(c)
	}
	if n.Type == html.ElementNode {
		switch n.DataAtom {
		case atom.P, atom.Div, atom.Section, atom.Li, atom.Pre, atom.Blockquote, atom.Dt, atom.Dd:
			w.flush()
		}
	}
}

// table writes an HTML table as a Markdown table, its first row the
// header.
func (w *mdWriter) table(t *html.Node) {
	var rows [][]string
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.DataAtom == atom.Tr {
			var row []string
			for c := n.FirstChild; c != nil; c = c.NextSibling {
				if c.Type == html.ElementNode && (c.DataAtom == atom.Td || c.DataAtom == atom.Th) {
					row = append(row, strings.ReplaceAll(textOf(c), "|", "/"))
				}
			}
			if len(row) > 0 {
				rows = append(rows, row)
			}
			return
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(t)
	for i, row := range rows {
		w.b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		if i == 0 {
			w.b.WriteString("|" + strings.Repeat(" --- |", len(row)) + "\n")
		}
	}
	if len(rows) > 0 {
		w.b.WriteString("\n")
	}
}

// resolve is ref resolved against base, "" when either is no URL.
func resolve(base, ref string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	r, err := u.Parse(strings.TrimSpace(ref))
	if err != nil || r.Host == "" {
		return ""
	}
	r.Fragment = ""
	return r.String()
}

// urlFor is the URL of a file of a dir source: the prefix and the file's
// path without its extension ("returns/damaged.md" is prefix +
// "returns/damaged").
func urlFor(prefix, rel string) string {
	if prefix == "" {
		return ""
	}
	rel = strings.TrimSuffix(filepath.ToSlash(rel), path.Ext(rel))
	return strings.TrimRight(prefix, "/") + "/" + strings.TrimLeft(rel, "/")
}
