package kb_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kommbridge/kommbridge/kb"
	"github.com/kommbridge/kommbridge/llm/llmtest"
)

// synthetic writes n articles made of the fixture's sentences, shuffled
// (about one passage each), for retrieval at sizes beyond the fixture.
func synthetic(b *testing.B, n int) string {
	b.Helper()
	var sentences []string
	entries, _ := os.ReadDir(articles)
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".md") {
			continue
		}
		data, _ := os.ReadFile(filepath.Join(articles, e.Name()))
		for _, s := range strings.Split(string(data), ". ") {
			if s = strings.TrimSpace(strings.Trim(s, "#|-")); len(s) > 20 {
				sentences = append(sentences, s+".")
			}
		}
	}
	dir := b.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		var body strings.Builder
		fmt.Fprintf(&body, "# Article %d\n\n", i)
		for range 12 {
			body.WriteString(sentences[r.IntN(len(sentences))] + " ")
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("a%06d.md", i)), []byte(body.String()), 0o644)
	}
	return dir
}

// BenchmarkRetrieve searches indexes of 5,000 and 100,000 passages with
// 256-dimension vectors (the question's vector given, as the embeddings
// endpoint's time is not kommbridge's), and reports the p95 of one hybrid
// search (and of keyword and vector search alone) and the memory a loaded
// passage holds; an op is the three searches. The 100,000 index takes minutes
// to build: -bench 'Retrieve/5000' skips it.
func BenchmarkRetrieve(b *testing.B) {
	for _, n := range []int{5000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			fake := llmtest.New(b)
			k := fixtureBase(b, synthetic(b, n), fake)
			k.MaxPages = n
			build(b, k)
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			x, err := kb.Open(k.Index)
			if err != nil {
				b.Fatal(err)
			}
			defer x.Close()
			runtime.GC()
			runtime.ReadMemStats(&after)
			questions := []string{"How long do refunds take?", "Can I pay with Klarna?", "Where is my tracking number?", "How do I dry my boots?",
				"What does shipping to Spain cost?", "Is there a student discount?", "Can I rent a tent?", "Do points expire?"}
			vectors := make([][]float32, len(questions))
			for i, q := range questions {
				vectors[i] = llmtest.Embedding(q, 256)
			}
			took := map[kb.Mode][]time.Duration{}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				// Hybrid, as serve searches; keyword and vector alone, to
				// show where the time goes.
				for _, mode := range []kb.Mode{kb.Hybrid, kb.Keyword, kb.Vector} {
					start := time.Now()
					if _, err := x.Search(context.Background(), kb.Query{Text: questions[i%len(questions)], Vector: vectors[i%len(questions)], Mode: mode}, 5); err != nil {
						b.Fatal(err)
					}
					took[mode] = append(took[mode], time.Since(start))
				}
			}
			for mode, ds := range took {
				slices.Sort(ds)
				b.ReportMetric(float64(ds[len(ds)*95/100].Microseconds())/1000, string(mode)+"-p95-ms")
			}
			b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(n), "heap-B/passage")
		})
	}
}
