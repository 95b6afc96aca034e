package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/bridge"
	"github.com/kommbridge/kommbridge/config"
	redisstore "github.com/kommbridge/kommbridge/store/redis"
)

// Report is what kommbridge report prints: the conversations active in
// the period, by outcome.
type Report struct {
	From, To      time.Time      `json:"-"`
	Since         string         `json:"since"`
	Conversations int            `json:"conversations"`
	WithUser      int            `json:"with_a_user_message"`
	Outcomes      map[string]int `json:"outcomes"`
	// Open are conversations still inside the resolve window.
	Open int `json:"open"`
	// ResolutionRate is the share of the decided conversations with a user
	// message that the bot resolved (containment).
	ResolutionRate float64                 `json:"resolution_rate"`
	Hours          [24]int                 `json:"conversations_started_by_hour_utc"`
	Unanswered     []kommbridge.Gap        `json:"top_unanswered,omitempty"`
	Records        []kommbridge.ConvRecord `json:"-"`
}

func report(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	path := fs.String("config", "config.yaml", "configuration file")
	since := fs.String("since", "7d", "the period: a duration such as 24h, or days such as 7d")
	jsonOut := fs.String("json", "", `write the report as JSON to this file ("-" for standard output)`)
	csvOut := fs.String("csv", "", `write one row per conversation as CSV to this file ("-" for standard output)`)
	logPath := fs.String("log", "", `read serve's JSON log ("-" for standard input) instead of the store`)
	if words, err := parseFlags(fs, args, false, stdout, stderr); err != nil || words == nil {
		return err
	}
	period, err := parsePeriod(*since)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errSilent
	}
	cfg, err := config.Load(*path, getenv, bridge.CheckTemplates)
	if err != nil {
		reportConfig(stderr, *path, err)
		return errSilent
	}
	now := time.Now()
	from := now.Add(-period)
	var recs []kommbridge.ConvRecord
	var gaps []kommbridge.Gap
	switch {
	case *logPath != "":
		recs, gaps, err = recordsFromLog(*logPath, from)
	case strings.HasPrefix(cfg.Store.URL, "redis"):
		var rs *redisstore.Store
		if rs, err = redisstore.New(cfg.Store.URL, redisstore.Options{}); err == nil {
			defer rs.Close()
			recs, err = rs.Outcomes(ctx, from)
			for _, k := range cfg.Knowledge {
				g, _ := rs.Gaps(ctx, k.Name, 5)
				gaps = append(gaps, g...)
			}
		}
	default:
		fmt.Fprintln(stderr, "the memory store keeps outcomes inside the serving process: read them from its log with --log FILE, or use a Redis store")
		return errSilent
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errSilent
	}
	r := buildReport(recs, gaps, now, cfg.Outcomes.ResolveWindow.D())
	r.Since, r.From, r.To = *since, from, now
	if *jsonOut != "" {
		if err := writeTo(*jsonOut, stdout, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		}); err != nil {
			return err
		}
	}
	if *csvOut != "" {
		if err := writeTo(*csvOut, stdout, func(w io.Writer) error { return writeCSV(w, r, now, cfg.Outcomes.ResolveWindow.D()) }); err != nil {
			return err
		}
	}
	if *jsonOut != "-" && *csvOut != "-" {
		r.print(stdout)
	}
	return nil
}

func parsePeriod(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--since %q: give a duration such as 24h, or days such as 7d", s)
	}
	return d, nil
}

// writeTo writes to path, or to stdout for "-".
func writeTo(path string, stdout io.Writer, write func(io.Writer) error) error {
	if path == "-" {
		return write(stdout)
	}
	return writeFile(path, write)
}

func buildReport(recs []kommbridge.ConvRecord, gaps []kommbridge.Gap, now time.Time, window time.Duration) Report {
	r := Report{Outcomes: map[string]int{}, Records: recs}
	for _, o := range kommbridge.ConversationOutcomes {
		r.Outcomes[o] = 0
	}
	decidedWithUser, resolved := 0, 0
	for _, rec := range recs {
		r.Conversations++
		r.Hours[rec.Started.UTC().Hour()]++
		if rec.UserMessages > 0 {
			r.WithUser++
		}
		r.Outcomes[kommbridge.ConvReopened] += min(rec.Reopened, 1)
		o := rec.Outcome(now, window)
		if o == "" {
			r.Open++
			continue
		}
		r.Outcomes[o]++
		if rec.UserMessages > 0 {
			decidedWithUser++
			if o == kommbridge.ConvResolved {
				resolved++
			}
		}
	}
	if decidedWithUser > 0 {
		r.ResolutionRate = float64(resolved) / float64(decidedWithUser)
	}
	slices.SortFunc(gaps, kommbridge.MostAsked)
	r.Unanswered = gaps[:min(5, len(gaps))]
	return r
}

func (r Report) print(w io.Writer) {
	fmt.Fprintf(w, "kommbridge report, %s to %s (UTC): %d conversations, %d with a user message\n",
		r.From.UTC().Format("2006-01-02 15:04"), r.To.UTC().Format("2006-01-02 15:04"), r.Conversations, r.WithUser)
	handed := r.Outcomes[kommbridge.ConvCustomerRequest] + r.Outcomes[kommbridge.ConvMissingKnowledge] + r.Outcomes[kommbridge.ConvModelFailure] + r.Outcomes[kommbridge.ConvOutOfHours]
	fmt.Fprintf(w, "  resolved by the bot        %6d   resolution rate %.0f%%\n", r.Outcomes[kommbridge.ConvResolved], 100*r.ResolutionRate)
	fmt.Fprintf(w, "  handed to people           %6d\n", handed)
	for _, c := range []struct{ key, label string }{{kommbridge.ConvCustomerRequest, "customer request"}, {kommbridge.ConvMissingKnowledge, "missing knowledge"},
		{kommbridge.ConvModelFailure, "model failure"}, {kommbridge.ConvOutOfHours, "out of hours"}} {
		fmt.Fprintf(w, "    %-24s %6d\n", c.label, r.Outcomes[c.key])
	}
	fmt.Fprintf(w, "  reopened after a resolve   %6d\n", r.Outcomes[kommbridge.ConvReopened])
	fmt.Fprintf(w, "  abandoned                  %6d\n", r.Outcomes[kommbridge.ConvAbandoned])
	fmt.Fprintf(w, "  still open                 %6d\n", r.Open)
	type hour struct{ h, n int }
	var hours []hour
	for h, n := range r.Hours {
		if n > 0 {
			hours = append(hours, hour{h, n})
		}
	}
	slices.SortFunc(hours, func(a, b hour) int { return b.n - a.n })
	var busiest []string
	for _, h := range hours[:min(3, len(hours))] {
		busiest = append(busiest, fmt.Sprintf("%02d:00 (%d)", h.h, h.n))
	}
	if len(busiest) > 0 {
		fmt.Fprintf(w, "busiest hours, by conversations started (UTC): %s\n", strings.Join(busiest, ", "))
	}
	if len(r.Unanswered) > 0 {
		fmt.Fprintln(w, "most asked questions the help center did not answer:")
		for _, g := range r.Unanswered {
			fmt.Fprintf(w, "  %4d  %s\n", g.Count, g.Question)
		}
	}
	fmt.Fprintln(w, `"resolved by the bot": closed as resolved by the bot, or answered with no handoff and no new message within outcomes.resolve_window`)
}

func writeCSV(w io.Writer, r Report, now time.Time, window time.Duration) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"conversation", "bot", "started", "user_messages", "outcome", "handoff_at", "resolved_at", "reopened"})
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, rec := range r.Records {
		o := rec.Outcome(now, window)
		if o == "" {
			o = "open"
		}
		cw.Write([]string{rec.Conversation, rec.Bot, ts(rec.Started), strconv.Itoa(rec.UserMessages), o, ts(rec.HandoffAt), ts(rec.ResolvedAt), strconv.Itoa(rec.Reopened)})
	}
	cw.Flush()
	return cw.Error()
}

// recordsFromLog rebuilds the outcome records from serve's webhook log
// lines since from, and the unanswered questions (those logged with
// log.content: true).
func recordsFromLog(path string, from time.Time) ([]kommbridge.ConvRecord, []kommbridge.Gap, error) {
	recs := map[string]*kommbridge.ConvRecord{}
	var order []string
	gaps := map[string]*kommbridge.Gap{}
	err := readLog(path, func(raw []byte) {
		var l struct {
			Msg           string  `json:"msg"`
			TS            string  `json:"ts"`
			Bot           string  `json:"bot"`
			Conversation  string  `json:"conversation"`
			Event         string  `json:"event"`
			Outcome       string  `json:"outcome"`
			AnswerOutcome string  `json:"answer_outcome"`
			HandoffReason string  `json:"handoff_reason"`
			Offline       bool    `json:"offline"`
			KB            string  `json:"kb"`
			Text          *string `json:"text"`
		}
		if json.Unmarshal(raw, &l) != nil || l.Msg != "webhook" || l.Conversation == "" {
			return
		}
		at, err := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS)
		if err != nil {
			at, err = time.Parse(time.RFC3339Nano, l.TS)
		}
		if err != nil || at.Before(from) {
			return
		}
		outcome := l.Outcome
		if outcome == kommbridge.OutcomeCallerGone {
			outcome = l.AnswerOutcome
		}
		if outcome == kommbridge.OutcomeDuplicate || outcome == kommbridge.OutcomeJoined || outcome == kommbridge.OutcomeHeld {
			return
		}
		rec := recs[l.Conversation]
		if rec == nil {
			rec = &kommbridge.ConvRecord{Conversation: l.Conversation}
			recs[l.Conversation] = rec
			order = append(order, l.Conversation)
		}
		rec.Apply(kommbridge.Step{At: at, Bot: l.Bot, User: l.Event == "message" || l.Event == kommbridge.EventMedia,
			Answered: bridge.Answered(outcome), HandoffReason: l.HandoffReason, Offline: l.Offline, Resolved: outcome == kommbridge.OutcomeResolved})
		if l.KB == "not_found" && l.Text != nil {
			q := bridge.GapText(*l.Text)
			if gaps[q] == nil {
				gaps[q] = &kommbridge.Gap{Question: q}
			}
			gaps[q].Count++
			gaps[q].Last = at
		}
	})
	if err != nil {
		return nil, nil, err
	}
	out := make([]kommbridge.ConvRecord, 0, len(order))
	for _, c := range order {
		out = append(out, *recs[c])
	}
	var gl []kommbridge.Gap
	for _, g := range gaps {
		gl = append(gl, *g)
	}
	return out, gl, nil
}
