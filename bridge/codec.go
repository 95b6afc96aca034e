package bridge

import (
	"encoding/json"
	"fmt"

	"github.com/kommbridge/kommbridge"
)

// encodeReply is the dedupe record of a reply.
func encodeReply(r kommbridge.Reply) []byte {
	b, _ := json.Marshal(r) // a Reply holds only strings and slices
	return b
}

func decodeReply(b []byte, r *kommbridge.Reply) error {
	if err := json.Unmarshal(b, r); err != nil {
		return fmt.Errorf("dedupe record: %w", err)
	}
	return nil
}
