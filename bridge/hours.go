package bridge

import (
	"fmt"
	"slices"
	"strings"
	"time"
	// Time zones without the system's database (slim images have none).
	_ "time/tzdata"

	"github.com/kommbridge/kommbridge/config"
)

// hours are a team's weekly opening hours in its time zone, less its
// holidays.
type hours struct {
	loc      *time.Location
	week     [7][]span // by time.Weekday
	holidays map[string]bool
}

// span is an opening period in minutes after midnight, [from, to).
type span struct{ from, to int }

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// parseHours compiles handoff.hours; errors name the key at fault.
func parseHours(h *config.Hours) (*hours, []error) {
	var errs []error
	loc, err := time.LoadLocation(h.TimeZone)
	if err != nil {
		errs = append(errs, fmt.Errorf("handoff.hours.time_zone: unknown time zone %q (an IANA name such as Europe/Berlin)", h.TimeZone))
		loc = time.UTC
	}
	out := &hours{loc: loc, holidays: map[string]bool{}}
	for days, times := range h.Weekly {
		key := "handoff.hours.weekly." + days
		ds, err := parseDays(days)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			continue
		}
		spans, err := parseSpans(times)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
			continue
		}
		for _, d := range ds {
			out.week[d] = append(out.week[d], spans...)
		}
	}
	for i := range out.week {
		slices.SortFunc(out.week[i], func(a, b span) int { return a.from - b.from })
	}
	for i, d := range h.Holidays {
		if _, err := time.Parse(time.DateOnly, d); err != nil {
			errs = append(errs, fmt.Errorf("handoff.hours.holidays[%d]: must be a date such as 2026-12-25; got %q", i, d))
			continue
		}
		out.holidays[d] = true
	}
	return out, errs
}

// parseDays reads "mon", "mon-fri" or "sat,sun".
func parseDays(s string) ([]time.Weekday, error) {
	var out []time.Weekday
	for part := range strings.SplitSeq(strings.ToLower(s), ",") {
		from, to, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, b := slices.Index(dayNames, strings.TrimSpace(from)), slices.Index(dayNames, strings.TrimSpace(to))
		if !isRange {
			b = a
		}
		if a < 0 || b < 0 {
			return nil, fmt.Errorf("days must be written mon, mon-fri or sat,sun; got %q", s)
		}
		for d := a; ; d = (d + 1) % 7 {
			out = append(out, time.Weekday(d))
			if d == b {
				break
			}
		}
	}
	return out, nil
}

// parseSpans reads "09:00-17:00", "09:00-12:00, 13:00-17:00" or "closed".
func parseSpans(s string) ([]span, error) {
	if strings.EqualFold(strings.TrimSpace(s), "closed") {
		return nil, nil
	}
	var out []span
	for part := range strings.SplitSeq(s, ",") {
		from, to, ok := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := clock(from)
		b, err2 := clock(to)
		if !ok || err1 != nil || err2 != nil || b <= a {
			return nil, fmt.Errorf("opening times must be written 09:00-17:00 (several separated by commas, to 24:00 at most) or closed; got %q", s)
		}
		out = append(out, span{a, b})
	}
	return out, nil
}

func clock(s string) (int, error) {
	var h, m int
	if _, err := fmt.Sscanf(strings.TrimSpace(s), "%d:%d", &h, &m); err != nil || h < 0 || m < 0 || m > 59 || h*60+m > 24*60 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return h*60 + m, nil
}

// open reports whether people answer at t.
func (h *hours) open(t time.Time) bool {
	t = t.In(h.loc)
	if h.holidays[t.Format(time.DateOnly)] {
		return false
	}
	m := t.Hour()*60 + t.Minute()
	for _, s := range h.week[t.Weekday()] {
		if m >= s.from && m < s.to {
			return true
		}
	}
	return false
}

// next is the first opening at or after t, in the hours' zone; zero when
// none comes within a year.
func (h *hours) next(t time.Time) time.Time {
	t = t.In(h.loc)
	for day := 0; day <= 366; day++ {
		d := time.Date(t.Year(), t.Month(), t.Day()+day, 0, 0, 0, 0, h.loc)
		if h.holidays[d.Format(time.DateOnly)] {
			continue
		}
		for _, s := range h.week[d.Weekday()] {
			at := d.Add(time.Duration(s.from) * time.Minute)
			if day == 0 && t.Hour()*60+t.Minute() >= s.to {
				continue
			}
			if at.Before(t) {
				at = t
			}
			return at
		}
	}
	return time.Time{}
}

// opens says when people are next in, relative to now: "today at 09:00
// CET", "tomorrow at 09:00 CET", "on Monday at 09:00 CET", or "as soon as
// possible" when no opening is known.
func (h *hours) opens(now time.Time) string {
	at := h.next(now)
	if at.IsZero() {
		return "as soon as possible"
	}
	now = now.In(h.loc)
	y1, m1, d1 := now.Date()
	days := int(time.Date(at.Year(), at.Month(), at.Day(), 12, 0, 0, 0, time.UTC).Sub(time.Date(y1, m1, d1, 12, 0, 0, 0, time.UTC)).Hours() / 24)
	when := at.Format("15:04 MST")
	switch {
	case days == 0:
		return "today at " + when
	case days == 1:
		return "tomorrow at " + when
	case days < 7:
		return "on " + at.Weekday().String() + " at " + when
	}
	return "on " + at.Format("Monday 2 January") + " at " + when
}
