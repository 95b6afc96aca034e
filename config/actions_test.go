package config

import (
	"strings"
	"testing"
)

// An action the configuration cannot safely make is refused at load,
// naming the key and the fix.
func TestActionProblems(t *testing.T) {
	base := `
media: {allowed_hosts: ["intranet.acme"]}
actions:
  - name: %s
    description: Look up an order.
    url: %s
    parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}
    response_fields: [status]
    headers: {Authorization: "%s"}
%s
bots: [{id: "*", actions: [order_status]%s}]
`
	for _, tt := range []struct {
		name, action, url, header, extra, bot, want string
	}{
		{"an argument in the host", "order_status", "https://{order_id}.acme.example/orders", "Bearer x", "", "", "actions[0].url: must not hold an argument in its host"},
		{"an undeclared argument", "order_status", "https://api.acme.example/orders/{id}", "Bearer x", "", "", "actions[0]: {id} is not one of parameters' properties"},
		{"http to a public host", "order_status", "http://api.acme.example/orders/{order_id}", "Bearer x", "", "", "is http: list its host in media.allowed_hosts"},
		{"an empty secret", "order_status", "https://api.acme.example/orders/{order_id}", "${NOT_SET}", "", "", "actions[0].headers.Authorization: is empty: ${NOT_SET} is not set"},
		{"a bad schema", "order_status", "https://api.acme.example/orders/{order_id}", "Bearer x", "    parameters: {type: object, properties: {order_id: {type: strin}}}", "", "is not a valid JSON Schema"},
		{"identity without a secret", "order_status", "https://api.acme.example/orders/{order_id}", "Bearer x", "    identity: required", "", "identity.secret is not set"},
		{"an unknown action", "order_lookup", "https://api.acme.example/orders/{order_id}", "Bearer x", "", "", `names no action: "order_status"`},
		{"actions with the text format", "order_status", "https://api.acme.example/orders/{order_id}", "Bearer x", "", ", reply_format: text", "need the json_schema, json_object or tools reply format"},
		{"a bad method", "order_status", "https://api.acme.example/orders/{order_id}", "Bearer x", "    method: FETCH", "", "must be GET, POST, PUT, PATCH, DELETE"},
		{"a write without a confirmation", "order_status", "https://api.acme.example/orders/{order_id}/cancel", "Bearer x", "    method: POST", "", "actions[0].confirm: is needed: a POST changes data"},
		{"a delete without a confirmation", "order_status", "https://api.acme.example/orders/{order_id}", "Bearer x", "    method: DELETE", "", "actions[0].confirm: is needed: a DELETE changes data"},
	} {
		extra := tt.extra
		if strings.Contains(extra, "parameters:") {
			// replaces the schema: drop the default one
			extra = ""
		}
		yml := strings.Replace(base, "%s", tt.action, 1)
		yml = strings.Replace(yml, "%s", tt.url, 1)
		yml = strings.Replace(yml, "%s", tt.header, 1)
		yml = strings.Replace(yml, "%s", extra, 1)
		yml = strings.Replace(yml, "%s", tt.bot, 1)
		if strings.Contains(tt.extra, "parameters:") {
			yml = strings.Replace(yml, "    parameters: {type: object, properties: {order_id: {type: string}}, required: [order_id]}", tt.extra, 1)
		}
		_, err := Parse([]byte(yml), "config.yaml", func(string) string { return "" })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	valid := strings.NewReplacer("name: %s", "name: order_status", "url: %s", "url: https://api.acme.example/orders/{order_id}?expand=items",
		`"%s"`, `"Bearer x"`, "%s", "").Replace(base)
	cfg, err := Parse([]byte(valid), "config.yaml", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	// A POST that only reads (a search) says so and runs without a
	// confirmation; a confirmed one needs no such word.
	for _, extra := range []string{"    method: POST\n    read_only: true", "    method: POST\n    confirm: \"Cancel order {order_id}?\""} {
		yml := strings.Replace(valid, "    response_fields: [status]", "    response_fields: [status]\n"+extra, 1)
		if _, err := Parse([]byte(yml), "config.yaml", func(string) string { return "" }); err != nil {
			t.Errorf("%q: %v", extra, err)
		}
	}
	a := cfg.Actions[0]
	if a.Method != MethodGet || a.Timeout.D().String() != "5s" || a.Identity != IdentityNone || cfg.Bots[0].MaxActionRounds != 3 || cfg.Confirmations.Yes != "Yes" {
		t.Errorf("defaults: %+v %+v", a, cfg.Confirmations)
	}
}
