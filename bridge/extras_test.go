package bridge

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/config"
	"github.com/kommbridge/kommbridge/prompt"
)

// Opening hours: open or not at a time, and when people are next in, in
// the team's time zone, across days, weekends and holidays.
func TestHours(t *testing.T) {
	h := mustHours(t, "Europe/Berlin", map[string]string{"mon-fri": "09:00-12:00, 13:00-17:00", "sat": "10:00-14:00", "sun": "closed"}, "2026-12-25")
	berlin, _ := time.LoadLocation("Europe/Berlin")
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for _, tt := range []struct {
		now   string
		open  bool
		opens string
	}{
		{"2026-11-26 10:00", true, "today at 10:00 CET"}, // a Thursday, open: "now"
		{"2026-11-26 12:30", false, "today at 13:00 CET"},
		{"2026-11-26 17:00", false, "tomorrow at 09:00 CET"},
		{"2026-11-27 08:59", false, "today at 09:00 CET"},
		{"2026-11-28 15:00", false, "on Monday at 09:00 CET"},   // Saturday after closing; Sunday closed
		{"2026-12-24 18:00", false, "on Saturday at 10:00 CET"}, // the 25th is a holiday
		{"2026-07-01 08:00", false, "today at 09:00 CEST"},
	} {
		now := at(tt.now)
		if got := h.open(now); got != tt.open {
			t.Errorf("%s: open %v, want %v", tt.now, got, tt.open)
		}
		if got := h.opens(now.UTC()); got != tt.opens {
			t.Errorf("%s: opens %q, want %q", tt.now, got, tt.opens)
		}
	}
	never := mustHours(t, "UTC", map[string]string{"mon-sun": "closed"})
	if got := never.opens(now); got != "as soon as possible" {
		t.Errorf("never open: %q", got)
	}
}

func TestHoursErrors(t *testing.T) {
	_, errs := parseHours(&config.Hours{TimeZone: "Mars/Olympus", Weekly: map[string]string{"mon-fry": "09:00-17:00", "sat": "17:00-09:00"}, Holidays: []string{"25.12.2026"}})
	var got []string
	for _, err := range errs {
		got = append(got, strings.SplitN(err.Error(), ":", 2)[0])
	}
	want := []string{"handoff.hours.time_zone", "handoff.hours.weekly.mon-fry", "handoff.hours.weekly.sat", "handoff.hours.holidays[0]"}
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
		t.Errorf("errors name (-want +got):\n%s\n%v", diff, errs)
	}
}

// Rich parts are kept only where the bot allows them and where they are
// valid; anything else is left out, never sent broken.
func TestRich(t *testing.T) {
	all := &Profile{RichKinds: map[string]bool{prompt.RichCards: true, prompt.RichLists: true, prompt.RichImages: true}}
	long := strings.Repeat("é", 100)
	tests := []struct {
		name    string
		p       *Profile
		in      prompt.Parsed
		cards   []kommbridge.Card
		list    *kommbridge.List
		images  []kommbridge.Image
		dropped []string
	}{
		{name: "valid cards", p: all,
			in: prompt.Parsed{Cards: []kommbridge.Card{{Title: "Pro plan", Subtitle: "$10", ImageURL: "https://acme.example/pro.png",
				Buttons: []kommbridge.Button{{Name: "Buy", URL: "https://acme.example/buy"}, {Name: "Tell me more"}}}}},
			cards: []kommbridge.Card{{Title: "Pro plan", Subtitle: "$10", ImageURL: "https://acme.example/pro.png",
				Buttons: []kommbridge.Button{{Name: "Buy", URL: "https://acme.example/buy"}, {Name: "Tell me more", Reply: "Tell me more"}}}}},
		{name: "an image and a link not on https, a card without a title", p: all,
			in:      prompt.Parsed{Cards: []kommbridge.Card{{Title: "A", ImageURL: "http://acme.example/a.png", Buttons: []kommbridge.Button{{Name: "Go", URL: "javascript:alert(1)"}, {Name: ""}}}, {Subtitle: "no title"}}},
			cards:   []kommbridge.Card{{Title: "A"}},
			dropped: []string{"a card image not on https", "a card button without a label or with a link not on https", "a card button without a label or with a link not on https", "a card without a title"}},
		{name: "bounds", p: all,
			in: prompt.Parsed{Cards: []kommbridge.Card{{Title: long, Buttons: []kommbridge.Button{{Name: "1"}, {Name: "2"}, {Name: "3"}, {Name: "4"}}}},
				Images: []kommbridge.Image{{URL: "https://a.example/1"}, {URL: "https://a.example/2"}, {URL: "https://a.example/3"}, {URL: "https://a.example/4"}, {URL: "https://a.example/5"}, {URL: "https://a.example/6"}}},
			cards:   []kommbridge.Card{{Title: strings.Repeat("é", 79) + "…", Buttons: []kommbridge.Button{{Name: "1", Reply: "1"}, {Name: "2", Reply: "2"}, {Name: "3", Reply: "3"}}}},
			images:  []kommbridge.Image{{URL: "https://a.example/1"}, {URL: "https://a.example/2"}, {URL: "https://a.example/3"}, {URL: "https://a.example/4"}, {URL: "https://a.example/5"}},
			dropped: []string{"card buttons over 3", "images over 5"}},
		{name: "a list; an item without a title", p: all,
			in:      prompt.Parsed{List: &kommbridge.List{Header: "Pick one", Items: []kommbridge.ListItem{{Title: "Track"}, {Description: "?"}, {Title: "Return", Reply: "I want to return"}}}},
			list:    &kommbridge.List{Header: "Pick one", Items: []kommbridge.ListItem{{Title: "Track", Reply: "Track"}, {Title: "Return", Reply: "I want to return"}}},
			dropped: []string{"a list item without a title"}},
		{name: "a list with no valid item is no list", p: all, in: prompt.Parsed{List: &kommbridge.List{Items: []kommbridge.ListItem{{}}}},
			dropped: []string{"a list item without a title"}},
		{name: "images with user information or spaces", p: all,
			in:      prompt.Parsed{Images: []kommbridge.Image{{URL: "https://user:pw@a.example/x.png"}, {URL: "https://a.example/a b.png"}, {URL: "https:///x.png"}}},
			dropped: []string{"an image not on https", "an image not on https", "an image not on https"}},
		{name: "kinds the bot does not allow", p: &Profile{RichKinds: map[string]bool{prompt.RichLists: true}},
			in:      prompt.Parsed{Cards: []kommbridge.Card{{Title: "A"}}, Images: []kommbridge.Image{{URL: "https://a.example/1"}}},
			dropped: []string{"cards (not allowed)", "images (not allowed)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cards, list, images, dropped := tt.p.rich(tt.in)
			if diff := cmp.Diff([]any{tt.cards, tt.list, tt.images, tt.dropped}, []any{cards, list, images, dropped}); diff != "" {
				t.Errorf("[cards list images dropped] (-want +got):\n%s", diff)
			}
		})
	}
}

// The system message is built once per rendered prompt, up to a bound;
// past it every message is still right.
func TestWholeSystemCached(t *testing.T) {
	p := &Profile{}
	p.contract.Instructions = "\n\n## How to answer"
	a, b := p.wholeSystem("Answer in en."), p.wholeSystem("Answer in en.")
	if a != "Answer in en.\n\n## How to answer" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Errorf("not cached: %q", a)
	}
	for i := range maxWholes + 10 {
		if got, want := p.wholeSystem(fmt.Sprint("user ", i)), fmt.Sprint("user ", i)+"\n\n## How to answer"; got != want {
			t.Fatalf("%q, want %q", got, want)
		}
	}
	if n := p.wholeCount.Load(); n != maxWholes {
		t.Errorf("%d cached, want the bound %d", n, maxWholes)
	}
}
