package kb

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/media"
)

// Embedder embeds texts; *llm.Embedder is one.
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	Model() string
	Dimensions() int
}

// BuildOptions say what to build and with what.
type BuildOptions struct {
	// Base is the knowledge base, its paths (index, dirs) resolved.
	Base config.KnowledgeBase
	// Fetcher reads url and sitemap sources; a source's own host is
	// allowed to it (Build adds them).
	Fetch FetchOptions
	// Embedder embeds passages; nil for a base without embeddings.
	Embedder Embedder
	// Progress, when set, hears what the build is doing, a line at a time.
	Progress io.Writer
	Now      func() time.Time
}

// FetchOptions are media's fetch rules for url and sitemap sources.
type FetchOptions = media.FetchOptions

// Summary is what a build did.
type Summary struct {
	Path   string
	Pages  int // pages and files read into passages
	Chunks int
	// Embedded passages were sent to the embeddings endpoint; Reused ones
	// kept their vectors from the previous index (same words, same model).
	Embedded, Reused int
	// Unchanged pages were not read again: a 304, or the same bytes.
	Unchanged int
	Skipped   []Skip
}

// Skip is something a build left out, and why.
type Skip struct{ What, Why string }

// docExts are the files a dir source reads.
var docExts = map[string]bool{".md": true, ".markdown": true, ".html": true, ".htm": true, ".txt": true, ".pdf": true}

// builder carries one build's state.
type builder struct {
	o       BuildOptions
	fetch   *media.Fetcher
	prev    *Index
	prevPg  map[string]PageState
	prevCh  map[string]Chunk
	pages   []PageState
	chunks  []Chunk
	ids     map[string]int
	robots  map[string]robots
	sum     Summary
	fetched int // pages fetched from url and sitemap sources
}

// Build reads the base's sources, cuts them into passages, embeds the
// passages whose words changed since the index at Base.Index was built
// (and only those), and writes the index there.
func Build(ctx context.Context, o BuildOptions) (Summary, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	b := &builder{o: o, prevPg: map[string]PageState{}, prevCh: map[string]Chunk{}, ids: map[string]int{}, robots: map[string]robots{}}
	b.sum.Path = o.Base.Index
	fo := o.Fetch
	for _, s := range o.Base.Sources {
		for _, raw := range []string{s.URL, s.Sitemap} {
			if u, err := url.Parse(raw); err == nil && u.Host != "" {
				fo.AllowedHosts = append(fo.AllowedHosts, u.Host)
			}
		}
	}
	b.fetch = media.NewFetcher(fo)
	if prev, err := Open(o.Base.Index); err == nil {
		b.prev = prev
		defer prev.Close()
		for _, p := range prev.Manifest.Pages {
			b.prevPg[p.Location] = p
		}
		for _, c := range prev.chunks {
			b.prevCh[c.ID] = c
		}
	} else if !errors.Is(err, ErrNoIndex) {
		b.skip(o.Base.Index, "the previous index is unreadable, so everything is read and embedded again: "+err.Error())
	}
	for _, s := range o.Base.Sources {
		var err error
		switch {
		case s.Dir != "":
			err = b.dir(s)
		case s.URL != "":
			b.page(ctx, s.URL)
		case s.Sitemap != "":
			err = b.sitemap(ctx, s)
		}
		if err != nil {
			return b.sum, err
		}
	}
	if len(b.chunks) == 0 {
		return b.sum, fmt.Errorf("kb %s: no passages: the sources gave no text (%d left out)", o.Base.Name, len(b.sum.Skipped))
	}
	b.say("%d pages, %d passages", b.sum.Pages+b.sum.Unchanged, len(b.chunks))
	m := Manifest{Base: o.Base.Name, BuiltAt: o.Now().UTC(), Language: o.Base.Language, Pages: b.pages}
	var vectors [][]float32
	if o.Embedder != nil {
		var err error
		if vectors, err = b.embed(ctx); err != nil {
			return b.sum, fmt.Errorf("kb %s: embedding: %w", o.Base.Name, err)
		}
		dims := 0
		if len(vectors) > 0 {
			dims = len(vectors[0])
		}
		m.Embedding = &EmbeddingInfo{Model: o.Embedder.Model(), Dimensions: dims}
	}
	if b.prev != nil && b.prev.Manifest.Floor != nil && sameEmbedding(b.prev.Manifest.Embedding, m.Embedding) {
		// The floor was calibrated for these vectors' scores; a rebuild
		// keeps it (kb eval --calibrate again after large changes).
		m.Floor, m.CalibratedAt = b.prev.Manifest.Floor, b.prev.Manifest.CalibratedAt
	}
	if err := write(o.Base.Index, m, b.chunks, vectors); err != nil {
		return b.sum, fmt.Errorf("kb %s: writing %s: %w", o.Base.Name, o.Base.Index, err)
	}
	b.sum.Chunks = len(b.chunks)
	return b.sum, nil
}

func sameEmbedding(a, b *EmbeddingInfo) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func (b *builder) say(format string, args ...any) {
	if b.o.Progress != nil {
		fmt.Fprintf(b.o.Progress, format+"\n", args...)
	}
}

func (b *builder) skip(what, why string) {
	b.sum.Skipped = append(b.sum.Skipped, Skip{what, why})
}

// dir reads a directory's articles, recursively.
func (b *builder) dir(s config.Source) error {
	root := s.Dir
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		ext := strings.ToLower(filepath.Ext(p))
		if !docExts[ext] {
			if !strings.HasPrefix(d.Name(), ".") {
				b.skip(p, "not an article type (.md .markdown .html .htm .txt .pdf)")
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			b.skip(p, err.Error())
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		b.add(PageState{Location: p, URL: urlFor(s.URLPrefix, rel)}, data, ext, rel)
		return nil
	})
	if err != nil {
		return fmt.Errorf("kb %s: reading %s: %w", b.o.Base.Name, root, err)
	}
	return nil
}

// add cuts a page into passages, or keeps its passages from the previous
// index when its bytes did not change.
func (b *builder) add(ps PageState, data []byte, kind, name string) {
	sum := sha256.Sum256(data)
	ps.Fingerprint = hex.EncodeToString(sum[:12])
	if prev, ok := b.prevPg[ps.Location]; ok && prev.Fingerprint == ps.Fingerprint && b.reuse(prev) {
		return
	}
	var a Article
	switch kind {
	case ".md", ".markdown", ".txt":
		a = fromMarkdown(data, ps.URL, name)
	case ".html", ".htm":
		a = fromHTML(data, ps.URL)
		if a.Title == "" {
			a.Title = titleFromName(name)
		}
	case ".pdf":
		text, _, err := media.PDFText(data)
		if err != nil {
			b.skip(ps.Location, err.Error())
			return
		}
		a = Article{URL: ps.URL, Title: titleFromName(name), Text: text}
	}
	if strings.TrimSpace(a.Text) == "" {
		b.skip(ps.Location, "no text")
		return
	}
	ps.URL, ps.Title = a.URL, a.Title
	for _, c := range chunks(a, b.idFor(ps)) {
		b.chunks = append(b.chunks, c)
		ps.Chunks = append(ps.Chunks, c.ID)
	}
	b.pages = append(b.pages, ps)
	b.sum.Pages++
}

// reuse keeps an unchanged page's passages; false when the previous
// index lacks them.
func (b *builder) reuse(prev PageState) bool {
	var cs []Chunk
	bases := map[string]bool{}
	for _, id := range prev.Chunks {
		c, ok := b.prevCh[id]
		base, _, _ := strings.Cut(id, "#")
		if !ok || b.ids[base] > 0 {
			return false // gone, or its name taken by a page read before it
		}
		cs = append(cs, c)
		bases[base] = true
	}
	for base := range bases {
		b.ids[base]++
	}
	b.chunks = append(b.chunks, cs...)
	b.pages = append(b.pages, prev)
	b.sum.Unchanged++
	return true
}

var unsafeID = regexp.MustCompile(`[^a-z0-9/_-]+`)

// idFor names a page's passages: its URL's path, or its file's path,
// made unique in the base.
func (b *builder) idFor(ps PageState) string {
	base := ps.Location
	if u, err := url.Parse(ps.URL); err == nil && u.Path != "" {
		base = u.Path
	}
	base = strings.TrimSuffix(base, filepath.Ext(base))
	base = strings.Trim(unsafeID.ReplaceAllString(strings.ToLower(filepath.ToSlash(base)), "-"), "/-")
	if base == "" {
		base = "page"
	}
	id := base
	for n := 2; b.ids[id] > 0; n++ {
		id = fmt.Sprintf("%s-%d", base, n)
	}
	b.ids[id]++
	return id
}

// page fetches one page (a url source, or a sitemap's page): a
// conditional request with the previous build's validators, so that an
// unchanged page costs a 304.
func (b *builder) page(ctx context.Context, raw string) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		b.skip(raw, "not a URL")
		return
	}
	if !b.allowedByRobots(ctx, u) {
		b.skip(raw, "robots.txt disallows it")
		return
	}
	if b.fetched >= b.o.Base.MaxPages {
		b.skip(raw, fmt.Sprintf("past knowledge[].max_pages (%d)", b.o.Base.MaxPages))
		return
	}
	b.fetched++
	h := http.Header{}
	prev, seen := b.prevPg[raw]
	if seen {
		if prev.ETag != "" {
			h.Set("If-None-Match", prev.ETag)
		}
		if prev.LastModified != "" {
			h.Set("If-Modified-Since", prev.LastModified)
		}
	}
	b.say("fetching %s", raw)
	p, err := b.fetch.Get(ctx, raw, h)
	switch {
	case err != nil:
		b.skip(raw, err.Error())
		return
	case p.Status == http.StatusNotModified && seen:
		if b.reuse(prev) {
			return
		}
		p, err = b.fetch.Get(ctx, raw, nil) // the previous passages are gone: read it again
		if err != nil {
			b.skip(raw, err.Error())
			return
		}
	}
	if p.Status != http.StatusOK {
		b.skip(raw, fmt.Sprintf("HTTP %d", p.Status))
		return
	}
	ps := PageState{Location: raw, URL: raw, ETag: p.Header.Get("ETag"), LastModified: p.Header.Get("Last-Modified")}
	kind := ".txt"
	switch {
	case p.Type == "text/html":
		kind = ".html"
	case p.Type == "application/pdf":
		kind = ".pdf"
	case strings.HasPrefix(p.Type, "text/"):
	default:
		b.skip(raw, "not an article: "+p.Type)
		return
	}
	name := strings.TrimSuffix(u.Path, "/")
	if name == "" {
		name = u.Host
	}
	b.add(ps, p.Data, kind, name)
}

func (b *builder) allowedByRobots(ctx context.Context, u *url.URL) bool {
	key := u.Scheme + "://" + u.Host
	r, ok := b.robots[key]
	if !ok {
		if p, err := b.fetch.Get(ctx, key+"/robots.txt", nil); err == nil && p.Status == http.StatusOK {
			r = parseRobots(string(p.Data))
		}
		b.robots[key] = r
	}
	return r.allowed(u.EscapedPath())
}

// sitemap reads a sitemap (or a sitemap index, one level down) and
// fetches the pages it lists whose path starts with an include prefix.
func (b *builder) sitemap(ctx context.Context, s config.Source) error {
	locs, err := b.sitemapURLs(ctx, s.Sitemap, 0)
	if err != nil {
		return fmt.Errorf("kb %s: sitemap %s: %w", b.o.Base.Name, s.Sitemap, err)
	}
	for _, loc := range locs {
		u, err := url.Parse(loc)
		if err != nil {
			b.skip(loc, "not a URL")
			continue
		}
		if len(s.Include) > 0 && !hasPrefix(u.Path, s.Include) {
			continue
		}
		b.page(ctx, loc)
	}
	return nil
}

func hasPrefix(p string, prefixes []string) bool {
	for _, x := range prefixes {
		if strings.HasPrefix(p, x) {
			return true
		}
	}
	return false
}

func (b *builder) sitemapURLs(ctx context.Context, raw string, depth int) ([]string, error) {
	p, err := b.fetch.Get(ctx, raw, nil)
	if err != nil {
		return nil, err
	}
	if p.Status != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d", p.Status)
	}
	var doc struct {
		XMLName xml.Name
		URLs    []struct {
			Loc string `xml:"loc"`
		} `xml:"url"`
		Sitemaps []struct {
			Loc string `xml:"loc"`
		} `xml:"sitemap"`
	}
	if err := xml.Unmarshal(p.Data, &doc); err != nil {
		return nil, fmt.Errorf("not a sitemap: %w", err)
	}
	var out []string
	for _, u := range doc.URLs {
		out = append(out, strings.TrimSpace(u.Loc))
	}
	if depth == 0 {
		for _, sm := range doc.Sitemaps {
			more, err := b.sitemapURLs(ctx, strings.TrimSpace(sm.Loc), 1)
			if err != nil {
				b.skip(sm.Loc, err.Error())
				continue
			}
			out = append(out, more...)
		}
	}
	return out, nil
}

// embed returns every passage's vector: the previous index's for a
// passage whose words are unchanged (same model and size), the endpoint's
// for the rest.
func (b *builder) embed(ctx context.Context) ([][]float32, error) {
	e := b.o.Embedder
	reuse := map[string][]float32{}
	if p := b.prev; p != nil && p.Manifest.Embedding != nil && p.Manifest.Embedding.Model == e.Model() &&
		(e.Dimensions() == 0 || e.Dimensions() == p.Manifest.Embedding.Dimensions) {
		for i, c := range p.chunks {
			reuse[c.Hash] = p.Vector(i)
		}
	}
	out := make([][]float32, len(b.chunks))
	var todo []int
	for i, c := range b.chunks {
		if v, ok := reuse[c.Hash]; ok {
			out[i] = v
			b.sum.Reused++
			continue
		}
		todo = append(todo, i)
	}
	for start := 0; start < len(todo); start += 64 {
		part := todo[start:min(start+64, len(todo))]
		texts := make([]string, len(part))
		for j, i := range part {
			texts[j] = b.chunks[i].embedText()
		}
		vs, err := e.Embed(ctx, texts)
		if err != nil {
			return nil, err
		}
		for j, i := range part {
			out[i] = vs[j]
		}
		b.sum.Embedded += len(part)
		b.say("embedded %d of %d passages", b.sum.Embedded, len(todo))
	}
	dims := -1
	for _, v := range out {
		if dims >= 0 && len(v) != dims {
			return nil, fmt.Errorf("the endpoint answered vectors of %d and %d dimensions", dims, len(v))
		}
		dims = len(v)
	}
	return out, nil
}
