// Package action calls the business's own HTTP APIs for bots: actions
// the operator declared in config (method, URL, headers, the JSON Schema
// of the arguments, the fields of the answer the model may see), with
// arguments the model filled in and this package checked. It builds each
// URL so that an argument can never change the host or add a path
// segment, calls through media's address rules without following a
// redirect to another host, reads a bounded answer and cuts it to the
// declared fields. Actions that change data run only on the user's click
// of a signed, single-use confirmation (token.go); some run only for a
// user the website vouches for (identity.go).
package action
