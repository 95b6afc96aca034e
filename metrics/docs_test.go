package metrics

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kommbridge/kommbridge"
	"github.com/kommbridge/kommbridge/action"
	"github.com/kommbridge/kommbridge/bridge"
)

// operations reads docs/operations.md: its metrics table by metric name
// (the row's text), and the whole page.
func operations(t *testing.T) (rows map[string]string, page string) {
	t.Helper()
	data, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	rows = map[string]string{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(kommbridge_[a-z_]+)` \\|.*$").FindAllStringSubmatch(string(data), -1) {
		rows[m[1]] = m[0]
	}
	return rows, string(data)
}

// The metrics reference and the metrics agree: every metric has its row,
// every row is a metric, and each row names the label values an alert
// would be written on.
func TestMetricsReferenceIsComplete(t *testing.T) {
	rows, page := operations(t)
	for _, m := range Catalog {
		if _, ok := rows[m.Name]; !ok {
			t.Errorf("%s is not in docs/operations.md's metrics table", m.Name)
		}
	}
	for name := range rows {
		if !slices.ContainsFunc(Catalog, func(m Metric) bool { return m.Name == name }) {
			t.Errorf("docs/operations.md lists %s, which is no metric", name)
		}
	}
	values := map[string][]string{
		"kommbridge_handoffs_total":       kommbridge.HandoffReasons,
		"kommbridge_deliveries_total":     bridge.DeliveryResults,
		"kommbridge_attachments_total":    attachmentOutcomes,
		"kommbridge_finish_reasons_total": finishReasons,
		"kommbridge_model_errors_total":   kindNames(),
		"kommbridge_cut_total":            bridge.CutKinds,
		"kommbridge_action_calls_total":   action.Kinds,
		"kommbridge_false_promises_total": bridge.PromiseActions,
		"kommbridge_handoff_notes_total":  bridge.NoteResults,
		"kommbridge_conversations_total":  kommbridge.ConversationOutcomes,
		"kommbridge_kb_searches_total":    KBResults,
	}
	for name, vs := range values {
		for _, v := range vs {
			if !strings.Contains(rows[name], "`"+v+"`") {
				t.Errorf("docs/operations.md's row for %s does not name %q", name, v)
			}
		}
	}
	// Every outcome is named where the log line is described.
	logs := page[strings.Index(page, "## Logs"):strings.Index(page, "## Metrics")]
	for _, o := range kommbridge.Outcomes {
		if !strings.Contains(logs, "`"+o+"`") {
			t.Errorf("docs/operations.md's Logs do not name the outcome %q", o)
		}
	}
}

func kindNames() []string {
	out := []string{Other}
	for _, k := range errorKinds {
		out = append(out, k.Error())
	}
	return out
}
