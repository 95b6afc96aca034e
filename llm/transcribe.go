package llm

import "context"

// Transcribe turns speech into text through the primary endpoint's
// /audio/transcriptions. filename tells the endpoint the audio's format.
func (c *Client) Transcribe(ctx context.Context, model, filename string, audio []byte) (string, error) {
	ep := c.endpoints[0]
	text, err := ep.transcribe(ctx, model, filename, audio)
	if err != nil {
		return "", classify(ctx, ep.name, model, err)
	}
	return text, nil
}
