// Package prompt owns the words kommbridge sends and reads: the operator's
// templates and their variables, the reply contract with the model (the
// JSON schema, the handoff tool, the text marker) and the instructions that
// explain it, building the message list, and parsing whatever the model
// answered into clean text and signals.
package prompt
