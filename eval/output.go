package eval

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// Report is the machine-readable result: the run, and the configuration it
// was compared against if any.
type Report struct {
	Summary *Summary `json:"summary"`
	Against *Summary `json:"against,omitempty"`
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

// WriteJUnit writes the summary as JUnit XML: a testsuite per suite file,
// a testcase per case, failing below the minimum pass rate with every
// failure in its text.
func (s *Summary) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "kommbridge eval " + s.Config}
	index := map[string]int{}
	var total time.Duration
	for _, c := range s.Cases {
		i, ok := index[c.Suite]
		if !ok {
			i = len(out.Suites)
			index[c.Suite] = i
			out.Suites = append(out.Suites, junitSuite{Name: c.Suite})
		}
		var took time.Duration
		for _, l := range c.latencies {
			took += l
		}
		total += took
		jc := junitCase{Name: c.Name, Classname: c.Suite, Time: seconds(took)}
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
			out.Suites[i].Failures++
			out.Failures++
		}
		out.Suites[i].Tests++
		out.Suites[i].Cases = append(out.Suites[i].Cases, jc)
		out.Tests++
	}
	for i := range out.Suites {
		var took time.Duration
		for _, c := range s.Cases {
			if c.Suite == out.Suites[i].Name {
				for _, l := range c.latencies {
					took += l
				}
			}
		}
		out.Suites[i].Time = seconds(took)
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
