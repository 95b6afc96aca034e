package eval

import (
	"cmp"
	"fmt"
	"strings"
	"time"
)

// check compares what the user saw in a turn with its expectations; the
// judge's rubric is graded apart (it needs the model).
func check(e *Expect, tr *TurnResult) []Failure {
	var out []Failure
	fail := func(check, format string, args ...any) {
		out = append(out, Failure{Check: check, Reason: fmt.Sprintf(format, args...)})
	}
	if e.Handoff != nil && *e.Handoff != tr.Handoff {
		if *e.Handoff {
			fail("handoff", "want a handoff, got none (outcome %s)", tr.Outcome)
		} else {
			fail("handoff", "want no handoff, got one (reason %s)", tr.Reason)
		}
	}
	if e.Reason != "" && e.Reason != tr.Reason {
		fail("reason", "want handoff reason %s, got %s", e.Reason, orNone(tr.Reason))
	}
	if e.Team != "" && e.Team != tr.Team {
		fail("team", "want team %s, got %s", e.Team, orNone(tr.Team))
	}
	lower := strings.ToLower(tr.Text)
	for _, c := range e.Contains {
		if !strings.Contains(lower, strings.ToLower(c)) {
			fail("contains", "the answer does not contain %q", c)
		}
	}
	for _, c := range e.NotContains {
		if strings.Contains(lower, strings.ToLower(c)) {
			fail("not_contains", "the answer contains %q", c)
		}
	}
	if e.matches != nil && !e.matches.MatchString(tr.Text) {
		fail("matches", "the answer does not match /%s/", e.Matches)
	}
	if b := e.Buttons; b != nil {
		n := len(tr.Buttons)
		for _, want := range b.Includes {
			if !hasButton(tr.Buttons, want) {
				fail("buttons", "no button %q (buttons: %s)", want, list(tr.Buttons))
			}
		}
		switch {
		case b.Count != nil && n != *b.Count:
			fail("buttons", "want %d buttons, got %d (%s)", *b.Count, n, list(tr.Buttons))
		case b.Min != nil && n < *b.Min:
			fail("buttons", "want at least %d buttons, got %d", *b.Min, n)
		case b.Max != nil && n > *b.Max:
			fail("buttons", "want at most %d buttons, got %d", *b.Max, n)
		}
	}
	if e.Resolved != nil && *e.Resolved != tr.Resolved {
		fail("resolved", "want resolved %v, got %v", *e.Resolved, tr.Resolved)
	}
	if e.Outcome != "" && e.Outcome != tr.Outcome {
		fail("outcome", "want outcome %s, got %s", e.Outcome, tr.Outcome)
	}
	if e.MaxLatency > 0 && tr.Latency > e.MaxLatency.D() {
		fail("max_latency", "took %s, over %s", tr.Latency.Round(timeRound(tr.Latency)), e.MaxLatency.D())
	}
	if e.MaxTokens > 0 && tr.TokensOut > e.MaxTokens {
		fail("max_tokens", "the answer used %d tokens, over %d", tr.TokensOut, e.MaxTokens)
	}
	if e.Form != "" {
		switch {
		case tr.Form == nil:
			fail("form", "want form %s shown, got none", e.Form)
		case tr.Form.Name != e.Form:
			fail("form", "want form %s shown, got %s", e.Form, tr.Form.Name)
		}
	}
	if e.Attach != nil && *e.Attach != tr.Attach {
		fail("attach", "want the attach button opened %v, got %v", *e.Attach, tr.Attach)
	}
	var cards, items, images []string
	for _, c := range tr.Cards {
		cards = append(cards, c.Title)
	}
	if tr.List != nil {
		for _, it := range tr.List.Items {
			items = append(items, it.Title)
		}
	}
	for _, im := range tr.Images {
		images = append(images, im.Caption, im.URL)
	}
	parts(fail, "cards", e.Cards, len(tr.Cards), cards)
	parts(fail, "list", e.List, len(items), items)
	parts(fail, "images", e.Images, len(tr.Images), images)
	if e.NoFalsePromise && tr.Promise != "" {
		fail("no_false_promise", "the reply promised a person without handing off (kommbridge: %s)", tr.Promise)
	}
	for _, want := range e.Calls {
		found := false
		var got []string
		for _, c := range tr.Calls {
			found = found || (c.Action == want.Action && holds(c.Args, want.Args))
			got = append(got, fmt.Sprintf("%s %v", c.Action, c.Args))
		}
		if !found {
			fail("calls", "no call of %s with %v (calls: %s)", want.Action, want.Args, list(got))
		}
	}
	for _, name := range e.NoCalls {
		for _, c := range tr.Calls {
			if c.Action == name && c.ran() {
				fail("no_calls", "%s ran (%v, %s)", name, c.Args, c.Kind)
			}
		}
	}
	for _, want := range e.Cites {
		found := false
		var got []string
		for _, c := range tr.Cited {
			found = found || strings.EqualFold(strings.TrimRight(c.URL, "/"), strings.TrimRight(want, "/")) || strings.EqualFold(c.Title, want)
			got = append(got, cmp.Or(c.URL, c.Title))
		}
		if !found {
			fail("cites", "the answer does not cite %s (cites: %s)", want, list(got))
		}
	}
	if e.NotInKB != nil {
		switch none := tr.KB == "not_found"; {
		case tr.KB == "":
			fail("not_in_kb", "the help center was not asked (the bot has no knowledge, or the turn is no question)")
		case none != *e.NotInKB && none:
			fail("not_in_kb", "want an answer from the help center, but it found nothing that matches")
		case none != *e.NotInKB:
			fail("not_in_kb", "want nothing found in the help center, but it matched (%s)", tr.KB)
		}
	}
	for _, want := range e.Links {
		found := false
		for _, l := range tr.Links {
			found = found || l.URL == want
		}
		if !found {
			var got []string
			for _, l := range tr.Links {
				got = append(got, l.URL)
			}
			fail("links", "no link button to %s (links: %s)", want, list(got))
		}
	}
	return out
}

// parts checks a kind of rich part: its count and the titles it includes.
func parts(fail func(check, format string, args ...any), check string, e *PartsExpect, n int, titles []string) {
	if e == nil {
		return
	}
	if e.Count != nil && n != *e.Count {
		fail(check, "want %d, got %d (%s)", *e.Count, n, list(titles))
	}
	for _, want := range e.Titles {
		if !hasButton(titles, want) {
			fail(check, "none titled %q (%s)", want, list(titles))
		}
	}
}

func hasButton(buttons []string, want string) bool {
	for _, b := range buttons {
		if strings.EqualFold(strings.TrimSpace(b), strings.TrimSpace(want)) {
			return true
		}
	}
	return false
}

func list(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func timeRound(d time.Duration) time.Duration {
	if d > time.Second {
		return 10 * time.Millisecond
	}
	return time.Millisecond
}
