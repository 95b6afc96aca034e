package kb

import (
	"context"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/search/query"
)

// A Passage is a passage found for a question.
type Passage struct {
	Chunk
	// Match is how well the passage answers the question, from 0 to 1:
	// the share of the question's words (weighted by how rare they are in
	// the help center) the passage holds, averaged with the cosine of
	// their vectors when there are vectors.
	Match float64
	// Coverage and Cosine are Match's parts; Cosine is 0 without vectors.
	Coverage, Cosine float64
}

// Mode is how a search ran.
type Mode string

// Search modes.
const (
	Hybrid  Mode = "hybrid"  // keyword and vector lists, fused
	Keyword Mode = "keyword" // keyword only (no embeddings, or they failed)
	Vector  Mode = "vector"  // vector only (kb eval compares the three)
)

// Hits is what a search found.
type Hits struct {
	Passages []Passage
	Mode     Mode
	// Best is the best passage's Match; Unrelated says the question
	// shares no meaningful word with any passage found and is far from
	// them in meaning (cosine under unrelatedCosine), what min_score: auto
	// means before kb eval calibrates a floor.
	Best      float64
	Unrelated bool
	// EmbedErr is why the question could not be embedded, when a base
	// with embeddings searched by keyword alone.
	EmbedErr error
}

// Candidates from each list before fusion; k of rank fusion.
const (
	candidates = 20
	rrfK       = 60
	// unrelatedCosine is the cosine under which a question counts as far
	// from a passage in meaning: unrelated texts score 0.0-0.2 with common
	// embedding models, related ones 0.35 and more.
	unrelatedCosine = 0.25
)

// Query is a question to search for: its text, and its vector when the
// index has embeddings and the question could be embedded.
type Query struct {
	Text   string
	Vector []float32
	Mode   Mode // Hybrid unless set; Vector needs Vector
}

// Search finds the k passages that best answer q: the top candidates of
// keyword search (BM25) and of vector search (cosine), fused by
// reciprocal rank.
func (x *Index) Search(ctx context.Context, q Query, k int) (Hits, error) {
	mode := q.Mode
	if mode == "" {
		mode = Hybrid
	}
	if q.Vector == nil || x.dims == 0 {
		mode = Keyword
	}
	var lists [][]int
	if mode != Vector {
		kw, err := x.keyword(ctx, q.Text, candidates)
		if err != nil {
			return Hits{}, err
		}
		lists = append(lists, kw)
	}
	var sims []float32
	if mode != Keyword {
		if len(q.Vector) != x.dims {
			mode = Keyword
		} else {
			var vl []int
			vl, sims = x.nearest(q.Vector, candidates)
			lists = append(lists, vl)
		}
	}
	fused := fuse(lists)
	if len(fused) > k {
		fused = fused[:k]
	}
	h := Hits{Mode: mode, Unrelated: true}
	terms := x.terms(ctx, q.Text)
	for _, i := range fused {
		p := Passage{Chunk: x.chunks[i], Coverage: x.coverage(terms, i)}
		switch {
		case mode == Keyword:
			p.Match = p.Coverage
		case mode == Vector:
			p.Cosine = float64(sims[i])
			p.Match = max(p.Cosine, 0)
		default:
			p.Cosine = float64(sims[i])
			p.Match = (p.Coverage + max(p.Cosine, 0)) / 2
		}
		if p.Coverage > 0 || (sims != nil && p.Cosine >= unrelatedCosine) {
			h.Unrelated = false
		}
		h.Best = max(h.Best, p.Match)
		h.Passages = append(h.Passages, p)
	}
	return h, nil
}

// keyword is the passages' positions in BM25 order, at most n.
func (x *Index) keyword(ctx context.Context, text string, n int) ([]int, error) {
	fields := []struct {
		name  string
		boost float64
	}{{"title", 2}, {"heading", 1.5}, {"text", 1}}
	var qs []query.Query
	for _, f := range fields {
		m := bleve.NewMatchQuery(text)
		m.SetField(f.name)
		m.SetBoost(f.boost)
		qs = append(qs, m)
	}
	req := bleve.NewSearchRequestOptions(bleve.NewDisjunctionQuery(qs...), n, 0, false)
	res, err := x.kw.SearchInContext(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(res.Hits))
	for _, h := range res.Hits {
		if i, err := strconv.Atoi(h.ID); err == nil && i >= 0 && i < len(x.chunks) {
			out = append(out, i)
		}
	}
	return out, nil
}

// term is one analysed word of a question with its weight: the BM25
// inverse document frequency, highest for words no passage holds.
type term struct {
	text string
	idf  float64
}

// terms are the question's analysed words (stop words gone, stemmed),
// each once, with their weights.
func (x *Index) terms(ctx context.Context, text string) []term {
	seen := map[string]bool{}
	var out []term
	n := float64(len(x.chunks))
	for _, tok := range x.analyzer.Analyze([]byte(text)) {
		t := string(tok.Term)
		if seen[t] {
			continue
		}
		seen[t] = true
		df := 0.0
		if r, err := x.reader.TermFieldReader(ctx, tok.Term, "all", false, false, false); err == nil {
			df = float64(r.Count())
			r.Close()
		}
		out = append(out, term{t, math.Log(1 + (n-df+0.5)/(df+0.5))})
	}
	return out
}

// coverage is the weighted share of terms that passage i holds.
func (x *Index) coverage(terms []term, i int) float64 {
	if len(terms) == 0 {
		return 0
	}
	c := x.chunks[i]
	has := map[string]bool{}
	for _, tok := range x.analyzer.Analyze([]byte(c.Title + "\n" + c.Heading + "\n" + c.Text)) {
		has[string(tok.Term)] = true
	}
	var got, all float64
	for _, t := range terms {
		all += t.idf
		if has[t.text] {
			got += t.idf
		}
	}
	return got / all
}

// nearest is the n passages closest to v (unit length) and every
// passage's cosine: a flat scan, split across the processors when the
// index is large.
func (x *Index) nearest(v []float32, n int) ([]int, []float32) {
	rows := len(x.chunks)
	sims := make([]float32, rows)
	parts := 1
	if rows >= 20000 {
		parts = runtime.GOMAXPROCS(0)
	}
	var wg sync.WaitGroup
	per := (rows + parts - 1) / parts
	for p := 0; p < parts; p++ {
		lo, hi := p*per, min((p+1)*per, rows)
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				sims[i] = dot(v, x.vectors[i*x.dims:(i+1)*x.dims])
			}
		})
	}
	wg.Wait()
	return top(sims, n), sims
}

// top is the positions of the n largest of sims, largest first: one pass
// keeping the best n in order (n is small).
func top(sims []float32, n int) []int {
	if n <= 0 {
		return nil
	}
	best := make([]int, 0, n+1)
	for i, s := range sims {
		if len(best) == n && s <= sims[best[n-1]] {
			continue
		}
		at, _ := slices.BinarySearchFunc(best, s, func(j int, s float32) int {
			if sims[j] >= s {
				return -1
			}
			return 1
		})
		best = slices.Insert(best, at, i)
		if len(best) > n {
			best = best[:n]
		}
	}
	return best
}

func dot(a, b []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// fuse merges ranked lists by reciprocal rank: each position scores
// 1/(rrfK + rank) in each list it is in.
func fuse(lists [][]int) []int {
	score := map[int]float64{}
	var order []int
	for _, l := range lists {
		for r, i := range l {
			if _, ok := score[i]; !ok {
				order = append(order, i)
			}
			score[i] += 1 / float64(rrfK+r+1)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch sa, sb := score[a], score[b]; {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	return order
}
