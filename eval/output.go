package eval

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Report is a run, and the run of the configuration it was compared
// against if any (--against): what every output shows and what the exit
// code follows.
type Report struct {
	Summary *Summary `json:"summary"`
	Against *Summary `json:"against,omitempty"`
	// Baseline: Summary is the baseline (--baseline), and only its
	// regressions in Against fail: a case at or above the minimum pass
	// rate there and below it in Against.
	Baseline bool `json:"baseline,omitempty"`
}

// Summaries are the report's runs, the first one first.
func (r Report) Summaries() []*Summary {
	if r.Against == nil {
		return []*Summary{r.Summary}
	}
	return []*Summary{r.Summary, r.Against}
}

// Failing says why the report fails (exit 1), one line each; none when
// it passes: a case below the minimum pass rate in any configuration, or
// with a baseline, a case that regressed against it.
func (r Report) Failing() []string {
	var out []string
	if r.Baseline && r.Against != nil {
		for _, c := range r.Regressions() {
			out = append(out, fmt.Sprintf("%s: regressed: %s", r.Against.Config, c.Name))
		}
		return out
	}
	for _, s := range r.Summaries() {
		for _, c := range s.Below() {
			out = append(out, fmt.Sprintf("%s: below %s: %s", s.Config, pct(s.Totals.MinPass), c.Name))
		}
	}
	return out
}

// Regressions are the cases at or above the minimum pass rate in Summary
// and below it in Against.
func (r Report) Regressions() []*CaseResult {
	if r.Against == nil {
		return nil
	}
	type key struct{ suite, name string }
	passed := map[key]bool{}
	for _, c := range r.Summary.Cases {
		passed[key{c.Suite, c.Name}] = c.PassRate >= r.Summary.Totals.MinPass
	}
	var out []*CaseResult
	for _, c := range r.Against.Cases {
		if passed[key{c.Suite, c.Name}] && c.PassRate < r.Against.Totals.MinPass {
			out = append(out, c)
		}
	}
	return out
}

// WriteText prints every configuration's summary with its failures, then,
// when there are two, the comparison, and what fails.
func (r Report) WriteText(w io.Writer) {
	for i, s := range r.Summaries() {
		if r.Against != nil {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "== %s: %s\n", string(rune('A'+i)), s.Config)
		}
		s.WriteText(w)
	}
	if r.Against != nil {
		fmt.Fprintln(w)
		WriteCompare(w, r.Summary, r.Against)
		if r.Baseline {
			reg := r.Regressions()
			fmt.Fprintf(w, "\n%d regression(s) against the baseline (A)\n", len(reg))
			for _, c := range reg {
				fmt.Fprintf(w, "  %s: %d/%d in A, %d/%d in B\n", c.Name, passedIn(r.Summary, c), runsIn(r.Summary, c), c.Passed, c.Runs)
			}
		}
	}
}

func passedIn(s *Summary, c *CaseResult) int {
	for _, o := range s.Cases {
		if o.Suite == c.Suite && o.Name == c.Name {
			return o.Passed
		}
	}
	return 0
}

func runsIn(s *Summary, c *CaseResult) int {
	for _, o := range s.Cases {
		if o.Suite == c.Suite && o.Name == c.Name {
			return o.Runs
		}
	}
	return 0
}

// WriteJUnit writes every configuration as JUnit XML: a testsuite per
// configuration and suite file, a testcase per case.
func (r Report) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "kommbridge eval"}
	var total time.Duration
	for _, s := range r.Summaries() {
		prefix := ""
		if r.Against != nil {
			prefix = s.Config + ": "
		}
		suites, took := s.junit(prefix)
		total += took
		for _, js := range suites {
			out.Tests += js.Tests
			out.Failures += js.Failures
		}
		out.Suites = append(out.Suites, suites...)
	}
	out.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

// junit is the summary's JUnit test suites, a testsuite per suite file
// named with prefix, a testcase per case failing below the minimum pass
// rate with every failure in its text; took is the time of all its turns.
func (s *Summary) junit(prefix string) ([]junitSuite, time.Duration) {
	var out []junitSuite
	var times []time.Duration // per suite
	index := map[string]int{}
	var total time.Duration
	for _, c := range s.Cases {
		i, ok := index[c.Suite]
		if !ok {
			i = len(out)
			index[c.Suite] = i
			out = append(out, junitSuite{Name: prefix + c.Suite})
			times = append(times, 0)
		}
		var took time.Duration
		for _, l := range c.latencies {
			took += l
		}
		total += took
		jc := junitCase{Name: c.Name, Classname: prefix + c.Suite, Time: seconds(took)}
		if c.PassRate < s.Totals.MinPass {
			text := ""
			for _, f := range c.Failed {
				for i, tr := range f.Turns {
					for _, fl := range tr.Failures {
						text += fmt.Sprintf("run %d turn %d (%s): %s: %s\n  saw: %s\n", f.Run, i+1, tr.Input, fl.Check, fl.Reason, seen(tr))
					}
				}
			}
			jc.Failure = &junitFailure{Type: "expectation", Text: text,
				Message: fmt.Sprintf("%d/%d runs passed (%s), below %s", c.Passed, c.Runs, pct(c.PassRate), pct(s.Totals.MinPass))}
			out[i].Failures++
		}
		out[i].Tests++
		out[i].Cases = append(out[i].Cases, jc)
		times[i] += took
		out[i].Time = seconds(times[i])
	}
	return out, total
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteCompare prints two summaries case by case: pass rates, handoffs,
// tokens and latency of each, with the cases whose pass rate or handoffs
// differ marked, then both totals.
func WriteCompare(w io.Writer, a, b *Summary) {
	type key struct{ suite, name string }
	other := map[key]*CaseResult{}
	for _, c := range b.Cases {
		other[key{c.Suite, c.Name}] = c
	}
	fmt.Fprintf(w, "A = %s\nB = %s\n\n", a.Config, b.Config)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\tCASE\tPASS A\tPASS B\tHANDOFFS A\tHANDOFFS B\tTOKENS A\tTOKENS B\tP50 A\tP50 B\t")
	differ := 0
	for _, ca := range a.Cases {
		cb := other[key{ca.Suite, ca.Name}]
		if cb == nil {
			continue
		}
		mark := ""
		if ca.Passed*cb.Runs != cb.Passed*ca.Runs || ca.Handoffs*cb.Turns != cb.Handoffs*ca.Turns {
			mark = "*"
			differ++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d/%d\t%d/%d\t%d/%d\t%d\t%d\t%s\t%s\t\n", mark, ca.Name,
			ca.Passed, ca.Runs, cb.Passed, cb.Runs, ca.Handoffs, ca.Turns, cb.Handoffs, cb.Turns,
			ca.TokensIn+ca.TokensOut, cb.TokensIn+cb.TokensOut, dur(ca.P50), dur(cb.P50))
	}
	tw.Flush()
	fmt.Fprintf(w, "\n%d case(s) differ in pass rate or handoffs (*)\n", differ)
	for _, s := range []struct {
		name string
		t    Totals
	}{{"A", a.Totals}, {"B", b.Totals}} {
		fmt.Fprintf(w, "%s: %d/%d runs passed (%s); handoffs %s, precision %s, recall %s; tokens %d; p50 %s, p95 %s",
			s.name, s.t.RunsPassed, s.t.Runs, pct(s.t.PassRate), pct(s.t.HandoffRate), ratio(s.t.Precision), ratio(s.t.Recall),
			s.t.TokensIn+s.t.TokensOut, dur(s.t.P50), dur(s.t.P95))
		if s.t.Cost != nil {
			fmt.Fprintf(w, "; $%.4f", *s.t.Cost)
		}
		fmt.Fprintln(w)
	}
}

// FailedIn reads a JSON report (--json) and says which cases failed in
// it, in any configuration: below the minimum pass rate.
func FailedIn(r io.Reader) (func(suite, name string) bool, error) {
	var rep Report
	if err := json.NewDecoder(r).Decode(&rep); err != nil {
		return nil, fmt.Errorf("not a kommbridge eval JSON report: %w", err)
	}
	if rep.Summary == nil {
		return nil, fmt.Errorf("not a kommbridge eval JSON report: no summary")
	}
	type key struct{ suite, name string }
	failed := map[key]bool{}
	for _, s := range rep.Summaries() {
		for _, c := range s.Cases {
			if c.PassRate < s.Totals.MinPass {
				failed[key{c.Suite, c.Name}] = true
			}
		}
	}
	return func(suite, name string) bool { return failed[key{suite, name}] }, nil
}

// Only is suites with just the cases keep accepts; suites left without a
// case are left out.
func Only(suites []*Suite, keep func(suite, name string) bool) []*Suite {
	var out []*Suite
	for _, s := range suites {
		c := *s
		c.Cases = nil
		for _, k := range s.Cases {
			if keep(s.Path, k.Name) {
				c.Cases = append(c.Cases, k)
			}
		}
		if len(c.Cases) > 0 {
			out = append(out, &c)
		}
	}
	return out
}
