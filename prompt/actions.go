package prompt

import (
	"encoding/json"
	"fmt"
)

// What the model is told of its action calls, as the tool results it
// reads. Each is a JSON object; text from the arguments or an API is
// encoded, never spliced.

// ActionNoted answers a call of the reply contract's own tools (a
// handoff, a form) made beside actions: it is kept for the final answer.
const ActionNoted = `{"noted":true}`

// ActionInvalid: the arguments were refused; why is the schema's reason.
func ActionInvalid(why string) string { return notCalled(why) }

// ActionUnverified: the action needs a signed-in user; signIn is what to
// tell them.
func ActionUnverified(signIn string) string {
	return notCalled("the user is not signed in. Tell them: " + signIn)
}

// ActionOneChange: a second change asked for while one awaits the user.
func ActionOneChange() string {
	return notCalled("one change at a time can be confirmed; ask about this one after the user answers")
}

// ActionAwaiting: a change was offered to the user as question with yes
// and no buttons, and runs only on yes.
func ActionAwaiting(question, yes, no string) string {
	return object(map[string]string{"status": "awaiting_confirmation",
		"note": fmt.Sprintf("Nothing was done yet. The user now sees the question %q with %s and %s buttons, and it runs only if they press %s. Say so briefly; never say it is done.", question, yes, no, yes)})
}

// ActionConfirmed is the message that tells the model the user pressed
// yes under question, and what came of it: the service's answer when it
// went through, else failure.
func ActionConfirmed(yes, question, answer, failure string) string {
	if failure != "" {
		return fmt.Sprintf("(The user pressed %s to confirm: %s It did not go through: %s)", yes, question, failure)
	}
	return fmt.Sprintf("(The user pressed %s to confirm: %s It was done; the service answered: %s)", yes, question, answer)
}

func notCalled(why string) string {
	return object(map[string]string{"error": "nothing was called: " + why})
}

func object(v map[string]string) string {
	b, _ := json.Marshal(v)
	return string(b)
}
