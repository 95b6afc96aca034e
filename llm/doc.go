// Package llm calls OpenAI-compatible chat completion APIs (OpenAI, Azure
// OpenAI, vLLM, Ollama, OpenRouter, LiteLLM, gateways ...). It owns the
// HTTP call: a request is one typed value (wire.go), encoded once, sent
// with net/http to the endpoint's own origin, and its answer read once,
// within a size cap. Around that call it retries inside the caller's
// deadline, falls back to other endpoints, skips endpoints that keep
// failing, and reports failures as a few error kinds. It knows nothing of
// Kommunicate.
package llm
