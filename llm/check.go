package llm

import (
	"context"
	"fmt"
	"strings"
)

// Status is what Check found at one endpoint.
type Status struct {
	Endpoint string
	Model    string
	// Err is nil when the endpoint answered a chat request (or lists the
	// model); otherwise an *Error for the failed call.
	Err error
	// Note adds detail to a success, such as how it was checked.
	Note string
	// Warn is worth a look but no failure: the model list failed, or does
	// not name the model, and a one-token completion worked anyway.
	Warn string
}

// Check asks every endpoint for its model list and says, for each,
// whether it works. An endpoint whose list fails (gateways often have
// none, or an erring one) or does not name the model is asked a
// one-token completion instead, with a warning: chat is what counts.
func (c *Client) Check(ctx context.Context) []Status {
	out := make([]Status, len(c.endpoints))
	for i, ep := range c.endpoints {
		out[i] = ep.check(ctx)
	}
	return out
}

func (ep *endpoint) check(ctx context.Context) Status {
	st := Status{Endpoint: ep.name, Model: ep.model}
	if ep.azure {
		// Azure lists models, not the deployments requests name.
		return ep.ping(ctx, st)
	}
	ids, err := ep.models(ctx)
	if err != nil {
		e := classify(ctx, ep.name, ep.model, err)
		if e.Status != 404 && e.Status != 405 {
			// 404 and 405: there is no list here, which says nothing.
			st.Warn = fmt.Sprintf("the model list failed (%s)", e.Detail())
		}
		return ep.ping(ctx, st)
	}
	if id := listed(ids, ep.model); id != "" {
		st.Note = fmt.Sprintf("model %s listed", ep.model)
		if id != ep.model {
			st.Note += " as " + id
		}
		return st
	}
	shown := ids
	if len(shown) > 8 {
		shown = append(shown[:8:8], "...")
	}
	st.Warn = fmt.Sprintf("model %q is not in the model list (%s)", ep.model, strings.Join(shown, ", "))
	return ep.ping(ctx, st)
}

// listed is the id of ids that names model: the same, or the same after
// a provider's "vendor/" prefix on either side ("up/test-model" lists
// "test-model"); "" when none does.
func listed(ids []string, model string) string {
	base := func(s string) string { return s[strings.LastIndexByte(s, '/')+1:] }
	for _, id := range ids {
		if id == model {
			return id
		}
	}
	for _, id := range ids {
		if base(id) == base(model) {
			return id
		}
	}
	return ""
}

// ping checks the endpoint with a one-token completion.
func (ep *endpoint) ping(ctx context.Context, st Status) Status {
	req := Request{MaxTokens: 1, Messages: []Message{{Role: RoleUser, Content: "ping"}}}
	body, err := req.body(ep.model, ep.tokens.completion(ep.model))
	if err == nil {
		_, err = ep.chat(ctx, ep.model, body)
	}
	if err != nil {
		st.Err = classify(ctx, ep.name, ep.model, err)
		return st
	}
	st.Note = "a one-token completion worked"
	return st
}
