package eval

import (
	"html/template"
	"io"
)

// WriteHTML writes a self-contained report (one file, no external assets):
// the table of cases and totals, then every failing conversation as chat
// bubbles with its buttons, handoffs and what failed.
func (s *Summary) WriteHTML(w io.Writer) error {
	return htmlReport.Execute(w, s)
}

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":   pct,
	"ratio": ratio,
	"dur":   dur,
	"below": func(c *CaseResult, min float64) bool { return c.PassRate < min },
	"plus":  func(a, b int) int { return a + b },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>kommbridge eval: {{.Config}}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:960px;color:#111827;background:#ffffff;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px}h3{font-size:16px;margin:24px 0 8px}
.muted{color:#6b7280}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e5e7eb}
th{background:#f9fafb;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fef2f2}tr.fail td.status{color:#b91c1c;font-weight:600}td.status{color:#15803d;font-weight:600}
.totals{display:flex;flex-wrap:wrap;gap:8px 24px;margin:12px 0}.totals div{min-width:150px}.totals b{display:block;font-size:20px}
.chat{background:#f3f4f6;border-radius:12px;padding:16px;display:flex;flex-direction:column;gap:8px}
.row{display:flex}.row.user{justify-content:flex-end}
.bubble{max-width:70%;padding:9px 13px;border-radius:16px;white-space:pre-wrap;word-wrap:break-word}
.bubble.user{background:#1d4ed8;color:#ffffff;border-bottom-right-radius:4px}
.bubble.bot{background:#ffffff;color:#111827;border:1px solid #d1d5db;border-bottom-left-radius:4px}
.buttons{display:flex;flex-wrap:wrap;gap:6px;margin:2px 0 0}
.button{border:2px solid #7c3aed;color:#6d28d9;background:#f5f3ff;border-radius:999px;padding:3px 12px;font-size:13px;font-weight:600}
.badge{display:inline-block;font-size:12px;font-weight:600;border-radius:6px;padding:2px 8px;margin-right:6px}
.badge.handoff{background:#fef3c7;color:#92400e}.badge.resolved{background:#dcfce7;color:#166534}.badge.meta{background:#e5e7eb;color:#374151}
.failure{color:#b91c1c;font-size:13px;margin:2px 0 6px;padding-left:8px;border-left:3px solid #b91c1c}
</style></head><body>
<h1>kommbridge eval</h1>
<div class="muted">{{.Config}}</div>
{{with .Totals}}<div class="totals">
<div>cases at or above {{pct .MinPass}}<b>{{.CasesPassed}}/{{.Cases}}</b></div>
<div>runs passed<b>{{.RunsPassed}}/{{.Runs}} ({{pct .PassRate}})</b></div>
<div>handoff rate<b>{{pct .HandoffRate}}</b></div>
<div>precision / recall<b>{{ratio .Precision}} / {{ratio .Recall}}</b></div>
<div>tokens<b>{{plus .TokensIn .TokensOut}}</b></div>
<div>p50 / p95<b>{{dur .P50}} / {{dur .P95}}</b></div>
{{with .Cost}}<div>estimated cost<b>${{printf "%.4f" .}}</b></div>{{end}}
</div>{{end}}
<h2>Cases</h2>
<table><thead><tr><th>case</th><th>suite</th><th>passed</th><th></th><th>handoffs</th><th>tokens</th><th>p50</th></tr></thead><tbody>
{{$min := .Totals.MinPass}}{{range .Cases}}<tr class="{{if below . $min}}fail{{end}}"><td>{{.Name}}</td><td class="muted">{{.Suite}}</td><td class="num">{{.Passed}}/{{.Runs}}</td><td class="status">{{if below . $min}}fail{{else}}pass{{end}}</td><td class="num">{{.Handoffs}}/{{.Turns}}</td><td class="num">{{plus .TokensIn .TokensOut}}</td><td class="num">{{dur .P50}}</td></tr>
{{end}}</tbody></table>
{{range .Cases}}{{$case := .}}{{range .Failed}}
<h3>{{$case.Name}} <span class="muted">run {{.Run}}</span></h3>
<div class="chat">
{{range .Turns}}<div class="row user"><div class="bubble user">{{.Input}}</div></div>
{{range .Messages}}{{if .Message}}<div class="row bot"><div class="bubble bot">{{.Message}}</div></div>{{end}}{{end}}
{{if .Buttons}}<div class="buttons">{{range .Buttons}}<span class="button">{{.}}</span>{{end}}</div>{{end}}
<div>{{if .Handoff}}<span class="badge handoff">handed off{{with .Reason}}: {{.}}{{end}}{{with .Team}}, team {{.}}{{end}}</span>{{end}}{{if .Resolved}}<span class="badge resolved">resolved</span>{{end}}<span class="badge meta">{{.Outcome}} · {{dur .Latency}}{{if .TokensOut}} · {{plus .TokensIn .TokensOut}} tokens{{end}}</span></div>
{{range .Failures}}<div class="failure"><b>{{.Check}}</b>: {{.Reason}}</div>{{end}}
{{end}}</div>
{{end}}{{end}}
</body></html>
`))
