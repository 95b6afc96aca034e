// Package adapter speaks Kommunicate: the tolerant wire types of its
// webhook, the Echo server with its routes, header authentication and error
// bodies, and rendering a bridge reply as Kommunicate messages. It knows
// nothing of go-openai.
package adapter
