package llm

import (
	"strings"
	"sync/atomic"
)

// tokenField chooses how a request states its token limit: max_tokens,
// which most OpenAI-compatible servers know, or max_completion_tokens,
// which OpenAI's reasoning models (o1, o3, o4, gpt-5) require and refuse
// max_tokens without. It is forced by llm.max_completion_tokens, else
// learned from an endpoint that said which it wants, else guessed from
// the model's family.
type tokenField struct {
	force   bool
	learned atomic.Int32 // 0 not yet, 1 max_completion_tokens, 2 max_tokens
}

// reasoningFamilies are model name prefixes, after a provider's
// "vendor/" part, that take max_completion_tokens.
var reasoningFamilies = []string{"o1", "o3", "o4", "gpt-5"}

func (f *tokenField) completion(model string) bool {
	if f.force {
		return true
	}
	switch f.learned.Load() {
	case 1:
		return true
	case 2:
		return false
	}
	return reasoningModel(model)
}

func reasoningModel(model string) bool {
	name := strings.ToLower(model)
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	for _, f := range reasoningFamilies {
		if name == f || strings.HasPrefix(name, f+"-") || strings.HasPrefix(name, f+".") {
			return true
		}
	}
	return false
}

// learn reads a refused request for the field the endpoint wants instead
// of the one sent (completion: max_completion_tokens was sent). It
// reports whether the other field is worth a try; the choice is kept.
func (f *tokenField) learn(e *Error, completion bool) bool {
	if f.force || e.Kind != ErrRejected || e.Err == nil {
		return false
	}
	msg := strings.ToLower(e.Err.Error())
	if !strings.Contains(msg, "max_completion_tokens") {
		return false
	}
	if completion {
		// "Unrecognized request argument supplied: max_completion_tokens"
		f.learned.Store(2)
	} else {
		// "'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
		f.learned.Store(1)
	}
	return true
}
