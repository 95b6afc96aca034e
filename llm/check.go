package llm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Status is what Check found at one endpoint.
type Status struct {
	Endpoint string
	Model    string
	// Err is nil when the endpoint answered and has the model; its text
	// says what to fix otherwise.
	Err error
	// Note adds detail to a success, such as how it was checked.
	Note string
}

// Check asks every endpoint for its model list (a one-token completion
// where there is none) and says, for each, what works and what to fix.
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
		st.Err = fmt.Errorf("model %q is not served here (it lists %s): check the model name", ep.model, strings.Join(shown, ", "))
		return st
	}
	e := classify(ctx, ep.name, err)
	if e.Status == 404 || e.Status == 405 {
		// Some servers (a few proxies) have no model list: a one-token
		// completion tells instead.
		return ep.ping(ctx, st)
	}
	st.Err = advice(e)
	return st
}

// ping checks the endpoint with a one-token completion.
func (ep *endpoint) ping(ctx context.Context, st Status) Status {
	_, err := ep.client.CreateChatCompletion(ctx, toOpenAI(Request{MaxTokens: 1,
		Messages: []Message{{Role: RoleUser, Content: "ping"}}}, ep.model, ep.newer))
	if err != nil {
		st.Err = advice(classify(ctx, ep.name, err))
		return st
	}
	st.Note = "a one-token completion worked"
	return st
}

// advice turns a failed check into the fix an operator needs.
func advice(e *Error) error {
	switch {
	case e.Status == 401 || e.Status == 403:
		return fmt.Errorf("HTTP %d: the API key is wrong or lacks access: check llm.api_key (or OPENAI_API_KEY)", e.Status)
	case e.Status == 404:
		return fmt.Errorf("HTTP 404: nothing OpenAI-compatible at this base URL, or no such model/deployment: check llm.base_url (it usually ends in /v1) and the model name")
	case errors.Is(e, ErrTimeout):
		return fmt.Errorf("no answer in time: is the endpoint up, and reachable from here?")
	case e.Status == 0 && errors.Is(e, ErrUnavailable):
		return fmt.Errorf("cannot connect (%v): check llm.base_url and the network", e.Err)
	}
	return e
}
