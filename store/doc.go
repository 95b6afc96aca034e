// Package store keeps what kommbridge remembers between webhooks:
// conversation history, handed-off marks, dedupe records and per
// conversation locks. store/memory serves one instance; store/redis lets
// several share state. Both pass the same contract tests (storetest).
package store
