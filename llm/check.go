package llm

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Status is what Check found at one endpoint.
type Status struct {
	Endpoint string
	Model    string
	// Err is nil when the endpoint answered and has the model; otherwise
	// an *Error for a failed call, or a plain error naming the models the
	// endpoint lists.
	Err error
	// Note adds detail to a success, such as how it was checked.
	Note string
}

// Check asks every endpoint for its model list (a one-token completion
// where there is none) and says, for each, whether it works.
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
	list, err := ep.client.ListModels(ctx)
	if err == nil {
		ids := make([]string, len(list.Models))
		for i, m := range list.Models {
			ids[i] = m.ID
		}
		if slices.Contains(ids, ep.model) {
			st.Note = fmt.Sprintf("model %s listed", ep.model)
			return st
		}
		shown := ids
		if len(shown) > 8 {
			shown = append(shown[:8:8], "...")
		}
		st.Err = fmt.Errorf("model %q is not served here (it lists %s)", ep.model, strings.Join(shown, ", "))
		return st
	}
	e := classify(ctx, ep.name, err)
	if e.Status == 404 || e.Status == 405 {
		// Some servers (a few proxies) have no model list: a one-token
		// completion tells instead.
		return ep.ping(ctx, st)
	}
	st.Err = e
	return st
}

// ping checks the endpoint with a one-token completion.
func (ep *endpoint) ping(ctx context.Context, st Status) Status {
	_, err := ep.client.CreateChatCompletion(ctx, toOpenAI(Request{MaxTokens: 1,
		Messages: []Message{{Role: RoleUser, Content: "ping"}}}, ep.model, ep.tokens.completion(ep.model)))
	if err != nil {
		st.Err = classify(ctx, ep.name, err)
		return st
	}
	st.Note = "a one-token completion worked"
	return st
}
