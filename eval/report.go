package eval

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kommbridge/kommbridge/config"
)

// Summary is a run of suites, case by case, with totals.
type Summary struct {
	Config string        `json:"config"`
	Cases  []*CaseResult `json:"cases"`
	Totals Totals        `json:"totals"`
}

// CaseResult is a case over its repeats.
type CaseResult struct {
	Suite    string  `json:"suite"`
	Name     string  `json:"name"`
	Runs     int     `json:"runs"`
	Passed   int     `json:"passed"`
	PassRate float64 `json:"pass_rate"`
	// Handoffs counts the turns that handed off, over Turns.
	Handoffs  int `json:"handoffs"`
	Turns     int `json:"turns"`
	TokensIn  int `json:"tokens_in"`
	TokensOut int `json:"tokens_out"`
	// P50 is the median latency of the case's turns.
	P50 time.Duration `json:"p50_ns"`
	// Failed are the runs that failed, each with its whole conversation.
	Failed []FailedRun `json:"failed,omitempty"`

	latencies []time.Duration
}

// FailedRun is a failing conversation: every turn, with what failed.
type FailedRun struct {
	Run   int          `json:"run"`
	Turns []TurnResult `json:"turns"`
}

// Totals are over every run.
type Totals struct {
	Cases       int     `json:"cases"`
	CasesPassed int     `json:"cases_passed"` // at or above the minimum pass rate
	Runs        int     `json:"runs"`
	RunsPassed  int     `json:"runs_passed"`
	PassRate    float64 `json:"pass_rate"`
	Turns       int     `json:"turns"`
	Handoffs    int     `json:"handoffs"`
	HandoffRate float64 `json:"handoff_rate"`
	// Precision and Recall of handoffs, over turns that expect one way or
	// the other; nil when no turn gives them a denominator.
	Precision *float64 `json:"handoff_precision"`
	Recall    *float64 `json:"handoff_recall"`
	TokensIn  int      `json:"tokens_in"`
	TokensOut int      `json:"tokens_out"`
	// Failed counts the turns the error policy answered (the model or the
	// store failed); FirstError is the first of those failures.
	Failed     int    `json:"failed_turns"`
	FirstError string `json:"first_error,omitempty"`
	// JudgeTokens are the judge's, not counted in the others.
	JudgeTokens int           `json:"judge_tokens"`
	P50         time.Duration `json:"p50_ns"`
	P95         time.Duration `json:"p95_ns"`
	// Cost is estimated from eval.prices; nil without a price for every
	// model used.
	Cost    *float64 `json:"cost_usd"`
	MinPass float64  `json:"min_pass"`
}

// Summarize gathers runs into a summary; a case passes at minPass (0 to 1)
// or above.
func Summarize(config string, runs []*Run, prices map[string]config.Price, minPass float64) *Summary {
	s := &Summary{Config: config}
	byCase := map[*Case]*CaseResult{}
	var all []time.Duration
	t := &s.Totals
	t.MinPass = minPass
	var tp, fp, fn int
	cost, priced := 0.0, true
	for _, r := range runs {
		cr := byCase[r.Case]
		if cr == nil {
			cr = &CaseResult{Suite: r.Suite.Path, Name: r.Case.Name}
			byCase[r.Case] = cr
			s.Cases = append(s.Cases, cr)
		}
		cr.Runs++
		if r.Passed() {
			cr.Passed++
		} else {
			cr.Failed = append(cr.Failed, FailedRun{Run: r.N, Turns: r.Turns})
		}
		for _, tr := range r.Turns {
			cr.Turns++
			cr.TokensIn += tr.TokensIn
			cr.TokensOut += tr.TokensOut
			t.JudgeTokens += tr.judgeTokens
			cr.latencies = append(cr.latencies, tr.Latency)
			all = append(all, tr.Latency)
			if tr.Handoff {
				cr.Handoffs++
			}
			if tr.Error != "" {
				t.Failed++
				if t.FirstError == "" {
					t.FirstError = tr.Error
				}
			}
			if tr.Expected != nil {
				switch {
				case *tr.Expected && tr.Handoff:
					tp++
				case !*tr.Expected && tr.Handoff:
					fp++
				case *tr.Expected && !tr.Handoff:
					fn++
				}
			}
			if tr.TokensIn+tr.TokensOut > 0 {
				p, ok := prices[tr.Model]
				priced = priced && ok
				cost += (float64(tr.TokensIn)*p.Input + float64(tr.TokensOut)*p.Output) / 1e6
			}
		}
	}
	for _, cr := range s.Cases {
		cr.PassRate = float64(cr.Passed) / float64(cr.Runs)
		cr.P50 = percentile(cr.latencies, 0.5)
		t.Cases++
		if cr.PassRate >= minPass {
			t.CasesPassed++
		}
		t.Runs += cr.Runs
		t.RunsPassed += cr.Passed
		t.Turns += cr.Turns
		t.Handoffs += cr.Handoffs
		t.TokensIn += cr.TokensIn
		t.TokensOut += cr.TokensOut
	}
	if t.Runs > 0 {
		t.PassRate = float64(t.RunsPassed) / float64(t.Runs)
	}
	if t.Turns > 0 {
		t.HandoffRate = float64(t.Handoffs) / float64(t.Turns)
	}
	if tp+fp > 0 {
		p := float64(tp) / float64(tp+fp)
		t.Precision = &p
	}
	if tp+fn > 0 {
		r := float64(tp) / float64(tp+fn)
		t.Recall = &r
	}
	t.P50, t.P95 = percentile(all, 0.5), percentile(all, 0.95)
	if priced && len(prices) > 0 {
		t.Cost = &cost
	}
	return s
}

// Below lists the cases under the minimum pass rate.
func (s *Summary) Below() []*CaseResult {
	var out []*CaseResult
	for _, c := range s.Cases {
		if c.PassRate < s.Totals.MinPass {
			out = append(out, c)
		}
	}
	return out
}

func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// WriteText prints the summary as a table, then every failure with what
// the user saw and why it failed, then the totals.
func (s *Summary) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tPASS\tHANDOFFS\tTOKENS\tP50\t")
	for _, c := range s.Cases {
		mark := ""
		if c.PassRate < s.Totals.MinPass {
			mark = "  FAIL"
		}
		fmt.Fprintf(tw, "%s\t%d/%d (%s)%s\t%d/%d\t%d\t%s\t\n", c.Name, c.Passed, c.Runs, pct(c.PassRate), mark, c.Handoffs, c.Turns, c.TokensIn+c.TokensOut, dur(c.P50))
	}
	tw.Flush()
	for _, c := range s.Cases {
		// Runs that failed the same way are shown once.
		var order []string
		runs := map[string][]int{}
		for _, f := range c.Failed {
			var b strings.Builder
			for i, tr := range f.Turns {
				if len(tr.Failures) == 0 {
					continue
				}
				fmt.Fprintf(&b, "  turn %d: %s\n", i+1, tr.Input)
				fmt.Fprintf(&b, "    saw: %s\n", seen(tr))
				for _, fl := range tr.Failures {
					fmt.Fprintf(&b, "    %s: %s\n", fl.Check, fl.Reason)
				}
			}
			text := b.String()
			if _, ok := runs[text]; !ok {
				order = append(order, text)
			}
			runs[text] = append(runs[text], f.Run)
		}
		for _, text := range order {
			ns := runs[text]
			label := fmt.Sprintf("run %d", ns[0])
			if len(ns) > 1 {
				parts := make([]string, len(ns))
				for i, n := range ns {
					parts[i] = fmt.Sprint(n)
				}
				label = "runs " + strings.Join(parts, ", ")
			}
			fmt.Fprintf(w, "\nFAIL %s (%s)\n%s", c.Name, label, text)
		}
	}
	t := s.Totals
	fmt.Fprintf(w, "\n%d/%d cases at or above %s; %d/%d runs passed (%s)\n", t.CasesPassed, t.Cases, pct(t.MinPass), t.RunsPassed, t.Runs, pct(t.PassRate))
	fmt.Fprintf(w, "handoffs: %d of %d turns (%s), precision %s, recall %s\n", t.Handoffs, t.Turns, pct(t.HandoffRate), ratio(t.Precision), ratio(t.Recall))
	fmt.Fprintf(w, "tokens: %d in, %d out", t.TokensIn, t.TokensOut)
	if t.JudgeTokens > 0 {
		fmt.Fprintf(w, " (and %d for the judge)", t.JudgeTokens)
	}
	if t.Cost != nil {
		fmt.Fprintf(w, "; estimated cost $%.4f", *t.Cost)
	}
	fmt.Fprintf(w, "\nlatency: p50 %s, p95 %s\n", dur(t.P50), dur(t.P95))
	if t.Failed > 0 {
		fmt.Fprintf(w, "the model or the store failed in %d turn(s), which got the error policy's answer; the first: %s\n", t.Failed, t.FirstError)
	}
}

// seen is a turn's answer in one line: text, buttons, handoff, resolve.
func seen(tr TurnResult) string {
	parts := []string{fmt.Sprintf("%q", tr.Text)}
	if len(tr.Buttons) > 0 {
		parts = append(parts, "buttons ["+strings.Join(tr.Buttons, "] [")+"]")
	}
	if tr.Handoff {
		h := "handoff (" + orNone(tr.Reason)
		if tr.Team != "" {
			h += ", team " + tr.Team
		}
		parts = append(parts, h+")")
	}
	if tr.Resolved {
		parts = append(parts, "resolved")
	}
	parts = append(parts, "outcome "+tr.Outcome)
	if tr.Error != "" {
		parts = append(parts, "because: "+tr.Error)
	}
	return strings.Join(parts, "; ")
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

func ratio(f *float64) string {
	if f == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", *f)
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	case d < 100*time.Microsecond:
		return d.Round(time.Microsecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}

// formatMoney writes dollars with four decimals, as the text report does.
func formatMoney(f float64) string { return fmt.Sprintf("%.4f", f) }
