package eval_test

import "github.com/sashabaranov/go-openai"

func openaiUsage(in, out int) openai.Usage {
	return openai.Usage{PromptTokens: in, CompletionTokens: out, TotalTokens: in + out}
}
