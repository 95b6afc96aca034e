// Package llm calls OpenAI-compatible chat completion APIs (OpenAI, Azure
// OpenAI, vLLM, Ollama, OpenRouter, LiteLLM, ...) through go-openai. It
// retries inside the caller's deadline, falls back to other endpoints,
// skips endpoints that keep failing, and reports failures as a few error
// kinds. It knows nothing of Kommunicate; go-openai's types stay inside.
package llm
