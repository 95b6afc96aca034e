package bridge

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/kb"
	"github.com/kommbridge/kommbridge/prompt"
)

// What an answer from the help center shows: only the passages the model
// was given are cited, each once, in its order; a number it was not given
// is dropped and counted; a link it wrote itself stays a button only when
// it is a passage's; the cite style decides buttons, lines or nothing.
func TestCitations(t *testing.T) {
	given := []kb.Passage{
		{Chunk: kb.Chunk{ID: "returns#1", Title: "Returning an item", URL: "https://help.acme.example/returns"}},
		{Chunk: kb.Chunk{ID: "refunds#1", Title: "Refund times", URL: "https://help.acme.example/refunds"}},
		{Chunk: kb.Chunk{ID: "guide#1", Title: "Tent care guide"}}, // a file without a URL
	}
	text := "Returns take 30 days; see https://help.acme.example/returns or https://evil.example/phish."
	tests := []struct {
		name      string
		cite      func(*knowledge)
		sources   []int
		wantText  string
		wantLinks []kommbridge.Link
		cited     []string
		dropped   int
	}{
		{name: "buttons", cite: func(k *knowledge) { k.CiteButtons = true }, sources: []int{2, 9, 2, 1, 0},
			wantText:  text,
			wantLinks: []kommbridge.Link{{Name: "help.acme.example/returns", URL: "https://help.acme.example/returns"}, {Name: "Refund times", URL: "https://help.acme.example/refunds"}},
			cited:     []string{"refunds#1", "returns#1"}, dropped: 2},
		{name: "a passage without a URL is named in the text", cite: func(k *knowledge) { k.CiteButtons = true }, sources: []int{3},
			wantText:  text + "\n\nSource: Tent care guide",
			wantLinks: []kommbridge.Link{{Name: "help.acme.example/returns", URL: "https://help.acme.example/returns"}}, cited: []string{"guide#1"}},
		{name: "links", cite: func(k *knowledge) { k.CiteLinks = true }, sources: []int{1, 3},
			wantText:  text + "\n\nSources:\nReturning an item: https://help.acme.example/returns\nTent care guide",
			wantLinks: []kommbridge.Link{{Name: "help.acme.example/returns", URL: "https://help.acme.example/returns"}}, cited: []string{"returns#1", "guide#1"}},
		{name: "none", cite: func(*knowledge) {}, sources: []int{1},
			wantText:  text,
			wantLinks: []kommbridge.Link{{Name: "help.acme.example/returns", URL: "https://help.acme.example/returns"}}, cited: []string{"returns#1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := profile(t, func(p *Profile) {
				p.LinkButtons = true
				p.Knowledge = &knowledge{Base: "help", TopK: 5, MinAuto: true}
				tt.cite(p.Knowledge)
			})
			in := Input{Event: &kommbridge.Event{BotID: "bot", Text: "how do returns work?"}, Now: now, Asked: true, UserTurn: "how do returns work?",
				Reply: prompt.Parsed{Text: text, Sources: tt.sources}, Knowledge: &KBFacts{Passages: given, Best: 0.6}}
			d := decide(p, in)
			if len(d.Messages) != 1 {
				t.Fatalf("%d messages", len(d.Messages))
			}
			m := d.Messages[0]
			var cited []string
			for _, c := range d.Cited {
				cited = append(cited, c.ID)
			}
			got := []any{m.Text, m.Links, cited, d.DroppedSources}
			want := []any{tt.wantText, tt.wantLinks, tt.cited, tt.dropped}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("[text links cited dropped] (-want +got):\n%s", diff)
			}
			if d.Turns[len(d.Turns)-1].Text != text {
				t.Errorf("history keeps %q", d.Turns[len(d.Turns)-1].Text)
			}
		})
	}
}

// The no-match message carries the button that asks for a person.
func TestNoMatchButton(t *testing.T) {
	p := profile(t, func(p *Profile) {
		p.Knowledge = &knowledge{Base: "help", TopK: 5, MinAuto: true, NoMatch: "Not in our help center.", HumanButton: "Talk to a person"}
	})
	d := decide(p, Input{Event: &kommbridge.Event{BotID: "bot", Text: "bikes?"}, Now: now, UserTurn: "bikes?", Knowledge: &KBFacts{Unrelated: true}})
	if len(d.Messages) != 1 || d.Messages[0].HumanButton != "Talk to a person" || !d.NoMatch {
		t.Errorf("%+v", d)
	}
}

// The question asked of the help center: the user's words, with the
// message before them when they are few.
func TestQuestion(t *testing.T) {
	history := []kommbridge.Turn{{Role: "user", Text: "How much is shipping to France?"}, {Role: "assistant", Text: "8.95 EUR."}}
	for _, tt := range []struct {
		ev     kommbridge.Event
		joined []string
		want   string
	}{
		{kommbridge.Event{Text: "How long does a refund take?"}, nil, "How long does a refund take?"},
		{kommbridge.Event{Text: "and to Spain?"}, nil, "How much is shipping to France?\nand to Spain?"},
		{kommbridge.Event{Text: "and to Spain?"}, []string{"shipping to Italy"}, "shipping to Italy\nand to Spain?"},
		{kommbridge.Event{Name: "PRICING_PAGE", Text: "The user is on the pricing page."}, nil, ""},
		{kommbridge.Event{Text: "Name: Asha", Form: map[string]string{"name": "Asha"}}, nil, ""},
		{kommbridge.Event{Name: kommbridge.EventMedia, Attachments: []kommbridge.Attachment{{Type: "image/png"}}}, nil, ""},
		{kommbridge.Event{Name: kommbridge.EventMedia, Text: "is this tent covered by the warranty?"}, nil, "is this tent covered by the warranty?"},
	} {
		e := &event{ev: &tt.ev, joined: tt.joined}
		if got := e.question(history); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.ev, got, tt.want)
		}
	}
}

// unrelated is a help center that matches nothing.
type unrelated struct{}

func (unrelated) Get(string) kb.Retriever { return unrelated{} }
func (unrelated) Floor() (float64, bool)  { return 0, false }
func (unrelated) Retrieve(context.Context, string, int) (kb.Hits, error) {
	return kb.Hits{Mode: kb.Keyword, Unrelated: true}, nil
}

// stuckGaps is a gap store that holds every record until released, as a
// stalled Redis does.
type stuckGaps struct {
	release, done chan struct{}
	got           []string
}

func (g *stuckGaps) RecordGap(ctx context.Context, base, q string) error {
	select {
	case <-g.release:
	case <-ctx.Done():
	}
	g.got = append(g.got, base+": "+q)
	close(g.done)
	return nil
}

// A question the help center does not answer is answered at once, its
// record for kb gaps written after, so a stalled store delays nobody.
func TestGapRecordedAfterTheAnswer(t *testing.T) {
	cfg, err := config.Parse([]byte(`
knowledge:
  - name: help
    sources: [{dir: articles}]
    index: help.kbx
bots:
  - id: "*"
    knowledge: {base: help}
`), "test.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	gaps := &stuckGaps{release: make(chan struct{}), done: make(chan struct{})}
	m := &scripted{answer: says("never asked")}
	b, err := New(cfg, Deps{Model: m, Store: newStore(), Knowledge: unrelated{}, Gaps: gaps})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := b.Handle(context.Background(), message("k1", "Do you sell electric bikes?"))
	if r.Outcome != kommbridge.OutcomeNotInKB || m.calls.Load() != 0 {
		t.Fatalf("outcome %q, %d model calls", r.Outcome, m.calls.Load())
	}
	select {
	case <-gaps.done:
		t.Fatal("the answer waited for the gap's record")
	default:
	}
	close(gaps.release)
	<-gaps.done
	if len(gaps.got) != 1 || gaps.got[0] != "help: do you sell electric bikes" {
		t.Errorf("recorded %q", gaps.got)
	}
}
