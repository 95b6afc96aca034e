package llmtest

import (
	"embed"
	"encoding/json"
	"path"
	"sort"
	"strings"
	"testing"
)

// Fixture is a provider's answer in the shape its documentation gives,
// kept in testdata/providers: what kommbridge must handle beyond the
// happy path (refusals, filters, context overflows, errors in 200s,
// provider extras).
type Fixture struct {
	Name     string `json:"-"` // the file's name without .json
	Provider string `json:"provider"`
	Case     string `json:"case"`
	// Source names the documentation page the shape comes from.
	Source string `json:"source"`
	// Format is the reply format the bot asks for; "" means json_schema.
	Format     string          `json:"format"`
	Status     int             `json:"status"`
	RetryAfter string          `json:"retry_after"`
	Body       json.RawMessage `json:"body"`
}

//go:embed testdata/providers/*.json
var fixtures embed.FS

// Fixtures returns every provider fixture, by name.
func Fixtures(t testing.TB) []Fixture {
	t.Helper()
	entries, err := fixtures.ReadDir("testdata/providers")
	if err != nil {
		t.Fatal(err)
	}
	var out []Fixture
	for _, e := range entries {
		data, err := fixtures.ReadFile(path.Join("testdata/providers", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var f Fixture
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		f.Name = strings.TrimSuffix(e.Name(), ".json")
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Reply replays the fixture.
func (f Fixture) Reply() Reply {
	return Reply{Status: f.Status, Body: string(f.Body), RetryAfter: f.RetryAfter}
}
