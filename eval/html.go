package eval

import (
	"html/template"
	"io"
)

// WriteHTML writes the summary alone as Report.WriteHTML does.
func (s *Summary) WriteHTML(w io.Writer) error { return Report{Summary: s}.WriteHTML(w) }

// WriteJUnit writes the summary alone as Report.WriteJUnit does.
func (s *Summary) WriteJUnit(w io.Writer) error { return Report{Summary: s}.WriteJUnit(w) }

// WriteHTML writes a self-contained report (one file, no external assets):
// with two configurations, their cases side by side first; then, for
// each configuration, its totals, its cases, and every failing
// conversation as the widget shows it: chat bubbles, buttons, cards, a
// list, images (by their URL: the report loads nothing) and forms.
func (r Report) WriteHTML(w io.Writer) error {
	return htmlReport.Execute(w, r)
}

// sideBySide is a case's result in both configurations.
type sideBySide struct {
	Name       string
	A, B       *CaseResult
	MinA, MinB float64
	Regressed  bool
}

func (r Report) SideBySide() []sideBySide {
	if r.Against == nil {
		return nil
	}
	reg := map[*CaseResult]bool{}
	for _, c := range r.Regressions() {
		reg[c] = true
	}
	var out []sideBySide
	for _, a := range r.Summary.Cases {
		row := sideBySide{Name: a.Name, A: a, MinA: r.Summary.Totals.MinPass, MinB: r.Against.Totals.MinPass}
		for _, b := range r.Against.Cases {
			if b.Suite == a.Suite && b.Name == a.Name {
				row.B, row.Regressed = b, reg[b]
			}
		}
		out = append(out, row)
	}
	return out
}

var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":   pct,
	"ratio": ratio,
	"dur":   dur,
	"below": func(c *CaseResult, min float64) bool { return c != nil && c.PassRate < min },
	"plus":  func(a, b int) int { return a + b },
	"money": func(f *float64) string { return "$" + formatMoney(*f) },
	"label": func(i int) string { return string(rune('A' + i)) },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>kommbridge eval: {{.Summary.Config}}</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1040px;color:#111827;background:#ffffff;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px}h3{font-size:16px;margin:24px 0 8px}
.muted{color:#6b7280}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e5e7eb}
th{background:#f9fafb;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.fail td{background:#fef2f2}tr.fail td.status{color:#b91c1c;font-weight:600}td.status{color:#15803d;font-weight:600}
td.bad{color:#b91c1c;font-weight:600}td.good{color:#15803d}
.totals{display:flex;flex-wrap:wrap;gap:8px 24px;margin:12px 0}.totals div{min-width:150px}.totals b{display:block;font-size:20px}
.chat{background:#f3f4f6;border-radius:12px;padding:16px;display:flex;flex-direction:column;gap:8px}
.row{display:flex}.row.user{justify-content:flex-end}
.bubble{max-width:70%;padding:9px 13px;border-radius:16px;white-space:pre-wrap;word-wrap:break-word}
.bubble.user{background:#1d4ed8;color:#ffffff;border-bottom-right-radius:4px}
.bubble.bot{background:#ffffff;color:#111827;border:1px solid #d1d5db;border-bottom-left-radius:4px}
.buttons{display:flex;flex-wrap:wrap;gap:6px;margin:2px 0 0}
.button{border:2px solid #7c3aed;color:#6d28d9;background:#f5f3ff;border-radius:999px;padding:3px 12px;font-size:13px;font-weight:600}
.cards{display:flex;gap:10px;overflow-x:auto}
.card{min-width:180px;max-width:220px;background:#ffffff;border:1px solid #d1d5db;border-radius:12px;overflow:hidden}
.card .img,.image .img{background:#e5e7eb;color:#4b5563;font-size:11px;padding:22px 8px;text-align:center;word-break:break-all}
.card .body{padding:8px 10px}.card .title{font-weight:600}.card .sub{color:#6b7280;font-size:13px}
.card .cbtn{display:block;border-top:1px solid #e5e7eb;padding:6px 10px;color:#6d28d9;font-weight:600;font-size:13px;text-align:center}
.list{background:#ffffff;border:1px solid #d1d5db;border-radius:12px;max-width:70%}
.list .head{padding:8px 12px;font-weight:600;border-bottom:1px solid #e5e7eb}
.list .item{padding:8px 12px;border-bottom:1px solid #f3f4f6}.list .item .sub{color:#6b7280;font-size:13px}
.images{display:flex;gap:10px}.image{width:180px;background:#ffffff;border:1px solid #d1d5db;border-radius:12px;overflow:hidden}
.image .cap{padding:6px 10px;font-size:13px}
.form{background:#ffffff;border:1px solid #d1d5db;border-radius:12px;padding:10px 12px;max-width:70%}
.form label{display:block;font-size:13px;font-weight:600;margin-top:6px}
.form .field{border:1px solid #d1d5db;border-radius:6px;padding:4px 8px;color:#6b7280;font-size:13px;min-height:18px}
.form .opts{font-size:13px}.form .submit{margin-top:8px;display:inline-block;background:#7c3aed;color:#ffffff;border-radius:6px;padding:4px 14px;font-weight:600}
.badge{display:inline-block;font-size:12px;font-weight:600;border-radius:6px;padding:2px 8px;margin-right:6px}
.badge.handoff{background:#fef3c7;color:#92400e}.badge.resolved{background:#dcfce7;color:#166534}.badge.meta{background:#e5e7eb;color:#374151}.badge.attach{background:#dbeafe;color:#1e40af}
.failure{color:#b91c1c;font-size:13px;margin:2px 0 6px;padding-left:8px;border-left:3px solid #b91c1c}
</style></head><body>
<h1>kommbridge eval</h1>
{{$two := .Against}}{{if $two}}
<h2>Side by side</h2>
<div class="muted">A = {{.Summary.Config}}; B = {{.Against.Config}}{{if .Baseline}}; A is the baseline: only its regressions fail{{end}}</div>
<table><thead><tr><th>case</th><th>passed in A</th><th>passed in B</th><th>handoffs A / B</th><th>tokens A / B</th><th></th></tr></thead><tbody>
{{range .SideBySide}}<tr class="{{if .Regressed}}fail{{end}}"><td>{{.Name}}</td><td class="num {{if below .A .MinA}}bad{{else}}good{{end}}">{{.A.Passed}}/{{.A.Runs}}</td>{{with .B}}<td class="num {{if below . $.Against.Totals.MinPass}}bad{{else}}good{{end}}">{{.Passed}}/{{.Runs}}</td>{{else}}<td>-</td>{{end}}<td class="num">{{.A.Handoffs}}{{with .B}} / {{.Handoffs}}{{end}}</td><td class="num">{{plus .A.TokensIn .A.TokensOut}}{{with .B}} / {{plus .TokensIn .TokensOut}}{{end}}</td><td class="status">{{if .Regressed}}regressed{{end}}</td></tr>
{{end}}</tbody></table>
{{end}}
{{range $i, $s := .Summaries}}
<h2>{{if $two}}{{label $i}}: {{end}}{{$s.Config}}</h2>
{{with $s.Totals}}<div class="totals">
<div>cases at or above {{pct .MinPass}}<b>{{.CasesPassed}}/{{.Cases}}</b></div>
<div>runs passed<b>{{.RunsPassed}}/{{.Runs}} ({{pct .PassRate}})</b></div>
<div>handoff rate<b>{{pct .HandoffRate}}</b></div>
<div>precision / recall<b>{{ratio .Precision}} / {{ratio .Recall}}</b></div>
<div>tokens<b>{{plus .TokensIn .TokensOut}}</b></div>
<div>p50 / p95<b>{{dur .P50}} / {{dur .P95}}</b></div>
{{if .Cost}}<div>estimated cost<b>{{money .Cost}}</b></div>{{end}}
</div>{{end}}
<table><thead><tr><th>case</th><th>suite</th><th>passed</th><th></th><th>handoffs</th><th>tokens</th><th>p50</th></tr></thead><tbody>
{{$min := $s.Totals.MinPass}}{{range $s.Cases}}<tr class="{{if below . $min}}fail{{end}}"><td>{{.Name}}</td><td class="muted">{{.Suite}}</td><td class="num">{{.Passed}}/{{.Runs}}</td><td class="status">{{if below . $min}}fail{{else}}pass{{end}}</td><td class="num">{{.Handoffs}}/{{.Turns}}</td><td class="num">{{plus .TokensIn .TokensOut}}</td><td class="num">{{dur .P50}}</td></tr>
{{end}}</tbody></table>
{{range $s.Cases}}{{$case := .}}{{range .Failed}}
<h3>{{$case.Name}} <span class="muted">run {{.Run}}{{if $two}} in {{label $i}}{{end}}</span></h3>
<div class="chat">
{{range .Turns}}<div class="row user"><div class="bubble user">{{.Input}}</div></div>
{{range .Messages}}{{if .Message}}<div class="row bot"><div class="bubble bot">{{.Message}}</div></div>{{end}}{{end}}
{{with .Replies}}<div class="buttons">{{range .}}<span class="button">{{.}}</span>{{end}}</div>{{end}}
{{if .Cards}}<div class="cards">{{range .Cards}}<div class="card">{{with .ImageURL}}<div class="img">{{.}}</div>{{end}}<div class="body"><div class="title">{{.Title}}</div>{{with .Subtitle}}<div class="sub">{{.}}</div>{{end}}</div>{{range .Buttons}}<span class="cbtn">{{.Name}}</span>{{end}}</div>{{end}}</div>{{end}}
{{with .List}}<div class="list">{{with .Header}}<div class="head">{{.}}</div>{{end}}{{range .Items}}<div class="item">{{.Title}}{{with .Description}}<div class="sub">{{.}}</div>{{end}}</div>{{end}}</div>{{end}}
{{if .Images}}<div class="images">{{range .Images}}<div class="image"><div class="img">{{.URL}}</div>{{with .Caption}}<div class="cap">{{.}}</div>{{end}}</div>{{end}}</div>{{end}}
{{with .Form}}<div class="form">{{range .Fields}}{{if ne .Type "hidden"}}<label>{{.Label}}{{if .Required}} *{{end}}</label>{{if .Options}}<div class="opts">{{range $j, $o := .Options}}{{if $j}} · {{end}}{{$o}}{{end}}</div>{{else}}<div class="field">{{.Placeholder}}</div>{{end}}{{end}}{{end}}<span class="submit">{{.Submit}}</span></div>{{end}}
<div>{{if .Handoff}}<span class="badge handoff">handed off{{with .Reason}}: {{.}}{{end}}{{with .Team}}, team {{.}}{{end}}</span>{{end}}{{if .Resolved}}<span class="badge resolved">resolved</span>{{end}}{{if .Attach}}<span class="badge attach">attach button shown</span>{{end}}<span class="badge meta">{{.Outcome}} · {{dur .Latency}}{{if .TokensOut}} · {{plus .TokensIn .TokensOut}} tokens{{end}}</span></div>
{{range .Failures}}<div class="failure"><b>{{.Check}}</b>: {{.Reason}}</div>{{end}}
{{end}}</div>
{{end}}{{end}}
{{end}}
</body></html>
`))
