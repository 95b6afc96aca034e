// Package kbtest is the contract every kb.Retriever keeps, so that an
// external search engine can stand in for the embedded index: Run checks
// a Retriever built over the fixture help center (kb/testdata/helpcenter).
package kbtest

import (
	"context"
	"strings"
	"testing"

	"github.com/kommbridge/kommbridge/kb"
)

// Run checks r, a Retriever over the fixture help center's articles
// (https://help.acme.example/NAME for articles/NAME.md).
func Run(t *testing.T, r kb.Retriever) {
	ctx := context.Background()
	t.Run("finds the article that answers", func(t *testing.T) {
		for q, want := range map[string]string{
			"How much is express delivery?":             "https://help.acme.example/shipping",
			"I forgot my password":                      "https://help.acme.example/account",
			"How long is a gift card valid?":            "https://help.acme.example/gift-vouchers",
			"What size jacket for a 98 cm chest?":       "https://help.acme.example/sizing-guide",
			"Can I bring a power bank in the cabin?":    "https://help.acme.example/flying-with-gear",
			"My tent got packed wet, what should I do?": "https://help.acme.example/tent-care-guide",
		} {
			h, err := r.Retrieve(ctx, q, 5)
			if err != nil {
				t.Fatalf("%q: %v", q, err)
			}
			found := false
			for _, p := range h.Passages {
				found = found || p.URL == want
			}
			if !found {
				t.Errorf("%q: %s is not among the first 5 passages: %v", q, want, titles(h))
			}
		}
	})
	t.Run("at most k passages, each whole", func(t *testing.T) {
		for _, k := range []int{1, 3, 5} {
			h, err := r.Retrieve(ctx, "How do I return an item and when do I get my refund?", k)
			if err != nil {
				t.Fatal(err)
			}
			if len(h.Passages) == 0 || len(h.Passages) > k {
				t.Errorf("k=%d: %d passages", k, len(h.Passages))
			}
			for _, p := range h.Passages {
				if p.ID == "" || p.Title == "" || strings.TrimSpace(p.Text) == "" || p.Match < 0 || p.Match > 1 {
					t.Errorf("k=%d: a passage without id, title or text, or a match out of 0-1: %+v", k, p)
				}
				if p.Match > h.Best {
					t.Errorf("k=%d: passage %s matches %.3f, over the best %.3f", k, p.ID, p.Match, h.Best)
				}
			}
		}
	})
	t.Run("a question from elsewhere scores under one the help center answers", func(t *testing.T) {
		in, err := r.Retrieve(ctx, "Where can I find my tracking number?", 5)
		if err != nil {
			t.Fatal(err)
		}
		out, err := r.Retrieve(ctx, "Is your CEO on LinkedIn?", 5)
		if err != nil {
			t.Fatal(err)
		}
		if out.Best >= in.Best {
			t.Errorf("off-topic best %.3f, on-topic %.3f", out.Best, in.Best)
		}
		if in.Unrelated {
			t.Error("the on-topic question counts as unrelated")
		}
	})
	t.Run("an empty question finds nothing and fails nothing", func(t *testing.T) {
		h, err := r.Retrieve(ctx, "   ", 5)
		if err != nil {
			t.Fatal(err)
		}
		if h.Best > 0 {
			t.Errorf("best %.3f for an empty question", h.Best)
		}
	})
}

func titles(h kb.Hits) []string {
	var out []string
	for _, p := range h.Passages {
		out = append(out, p.Title)
	}
	return out
}
