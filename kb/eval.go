package kb

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// A LabelledSet is questions with the article that answers each, or none
// for questions the help center does not answer.
type LabelledSet struct {
	Base      string     `yaml:"base"`
	Questions []Labelled `yaml:"questions"`
}

// Labelled is one question and what answers it: an article's URL or
// title (any of a list), or "none".
type Labelled struct {
	Q      string   `yaml:"q"`
	Expect Expected `yaml:"expect"`
}

// Expected is a string or a list of them.
type Expected []string

// UnmarshalYAML reads a string or a list.
func (e *Expected) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*e = Expected{n.Value}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*e = list
	return nil
}

// answerable reports whether the help center should answer the question.
func (l Labelled) answerable() bool {
	return len(l.Expect) > 0 && !(len(l.Expect) == 1 && strings.EqualFold(l.Expect[0], "none"))
}

// LoadSet reads a labelled set.
func LoadSet(path string) (LabelledSet, error) {
	var s LabelledSet
	data, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	for i, q := range s.Questions {
		if strings.TrimSpace(q.Q) == "" || len(q.Expect) == 0 {
			return s, fmt.Errorf("%s: questions[%d]: needs q and expect (an article's URL or title, or none)", path, i)
		}
	}
	if len(s.Questions) == 0 {
		return s, fmt.Errorf("%s: no questions", path)
	}
	return s, nil
}

// ModeReport is how one search mode did on a labelled set.
type ModeReport struct {
	Mode Mode
	// Recall5 is the share of answerable questions whose article is among
	// the first 5 passages; MRR10 the mean of 1/rank of its first passage
	// within 10 (0 when absent).
	Recall5, MRR10 float64
	// Floor is the match score the abstain rates are measured at;
	// FloorFrom says where it came from.
	Floor     float64
	FloorFrom string
	// Abstain is the share of unanswerable questions that count as not in
	// the help center; FalseAbstain the share of answerable ones that do.
	Abstain, FalseAbstain float64
}

// EvalReport is a labelled set's result in each mode.
type EvalReport struct {
	Answerable, Unanswerable int
	Modes                    []ModeReport
	// Misses are answerable questions whose article was not in the first
	// 5 passages of the serving mode, for the report.
	Misses []Miss
	// Serving is the mode serve uses for this base.
	Serving Mode
}

// Miss is an answerable question the serving mode did not find.
type Miss struct {
	Q, Want string
	Got     []string // the titles found instead
}

// scored is one question's outcome in one mode.
type scored struct {
	rank      int // of the expected article, from 1; 0 when not in the first 10
	best      float64
	unrelated bool
	titles    []string
}

// Evaluate runs the set's questions through b in each mode it can (hybrid
// and vector need embeddings). With calibrate, each mode's abstain rates
// are measured at the floor Calibrate picks for it; otherwise at what
// serve uses: the index's calibrated floor, else the auto rule.
func Evaluate(ctx context.Context, b *Base, set LabelledSet, calibrate bool) (EvalReport, error) {
	modes := []Mode{Keyword}
	serving := Keyword
	if b.Index.dims > 0 && b.emb != nil {
		modes = []Mode{Keyword, Vector, Hybrid}
		serving = Hybrid
	}
	r := EvalReport{Serving: serving}
	results := map[Mode][]scored{}
	for _, q := range set.Questions {
		query := Query{Text: q.Q}
		if serving == Hybrid {
			vs, err := b.emb.Embed(ctx, []string{q.Q})
			if err != nil {
				return r, fmt.Errorf("embedding %q: %w", q.Q, err)
			}
			query.Vector = vs[0]
		}
		for _, m := range modes {
			query.Mode = m
			h, err := b.Index.Search(ctx, query, 10)
			if err != nil {
				return r, err
			}
			s := scored{best: h.Best, unrelated: h.Unrelated}
			for i, p := range h.Passages {
				s.titles = append(s.titles, p.Title)
				if s.rank == 0 && matches(p.Chunk, q.Expect) {
					s.rank = i + 1
				}
			}
			results[m] = append(results[m], s)
		}
	}
	for _, q := range set.Questions {
		if q.answerable() {
			r.Answerable++
		} else {
			r.Unanswerable++
		}
	}
	for _, m := range modes {
		mr := ModeReport{Mode: m}
		var ans, unans []float64
		for i, q := range set.Questions {
			s := results[m][i]
			if !q.answerable() {
				unans = append(unans, s.best)
				continue
			}
			ans = append(ans, s.best)
			if s.rank > 0 && s.rank <= 5 {
				mr.Recall5++
			}
			if s.rank > 0 {
				mr.MRR10 += 1 / float64(s.rank)
			}
			if m == serving && (s.rank == 0 || s.rank > 5) {
				r.Misses = append(r.Misses, Miss{Q: q.Q, Want: strings.Join(q.Expect, " or "), Got: first(s.titles, 3)})
			}
		}
		if r.Answerable > 0 {
			mr.Recall5 /= float64(r.Answerable)
			mr.MRR10 /= float64(r.Answerable)
		}
		floor, calibrated := b.Floor()
		switch {
		case calibrate:
			mr.Floor, mr.FloorFrom = Calibrate(ans, unans), "calibrated now"
		case calibrated:
			mr.Floor, mr.FloorFrom = floor, "calibrated"
		default:
			mr.FloorFrom = "auto rule"
		}
		for i, q := range set.Questions {
			s := results[m][i]
			no := s.best < mr.Floor
			if mr.FloorFrom == "auto rule" {
				no = s.unrelated
			}
			switch {
			case no && q.answerable():
				mr.FalseAbstain++
			case no:
				mr.Abstain++
			}
		}
		if r.Answerable > 0 {
			mr.FalseAbstain /= float64(r.Answerable)
		}
		if r.Unanswerable > 0 {
			mr.Abstain /= float64(r.Unanswerable)
		}
		r.Modes = append(r.Modes, mr)
	}
	return r, nil
}

// Mode returns the report of mode m.
func (r EvalReport) Mode(m Mode) (ModeReport, bool) {
	for _, mr := range r.Modes {
		if mr.Mode == m {
			return mr, true
		}
	}
	return ModeReport{}, false
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// matches reports whether c is the article one of want names (its URL,
// or its title, ignoring case and a trailing slash).
func matches(c Chunk, want []string) bool {
	for _, w := range want {
		w = strings.TrimSpace(w)
		if strings.EqualFold(strings.TrimRight(w, "/"), strings.TrimRight(c.URL, "/")) || strings.EqualFold(w, c.Title) {
			return true
		}
	}
	return false
}

// MaxFalseAbstain is the share of answerable questions a calibrated floor
// may count as not in the help center.
const MaxFalseAbstain = 0.05

// Calibrate picks the floor that counts the most unanswerable questions
// as not in the help center while at most MaxFalseAbstain of the
// answerable ones are: the best scores of both, sorted, give the
// candidates (midway between neighbours, so that a floor is never exactly
// a score seen); a tie goes to the lower floor.
func Calibrate(answerable, unanswerable []float64) float64 {
	all := slices.Sorted(slices.Values(append(slices.Clone(answerable), unanswerable...)))
	all = slices.Compact(all)
	candidates := []float64{0}
	for i := range all {
		next := 1.0
		if i+1 < len(all) {
			next = all[i+1]
		}
		candidates = append(candidates, (all[i]+next)/2)
	}
	below := func(s []float64, f float64) float64 {
		if len(s) == 0 {
			return 0
		}
		n := 0
		for _, v := range s {
			if v < f {
				n++
			}
		}
		return float64(n) / float64(len(s))
	}
	best, bestAbstain := 0.0, -1.0
	for _, f := range candidates {
		if below(answerable, f) > MaxFalseAbstain {
			continue
		}
		if a := below(unanswerable, f); a > bestAbstain {
			best, bestAbstain = f, a
		}
	}
	return best
}
