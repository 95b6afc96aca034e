package llm

import (
	"bytes"
	"context"

	openai "github.com/sashabaranov/go-openai"
)

// Transcribe turns speech into text through the primary endpoint's
// /audio/transcriptions. filename tells the endpoint the audio's format.
func (c *Client) Transcribe(ctx context.Context, model, filename string, audio []byte) (string, error) {
	ep := c.endpoints[0]
	resp, err := ep.client.CreateTranscription(ctx, openai.AudioRequest{
		Model:    model,
		FilePath: filename,
		Reader:   bytes.NewReader(audio),
		Format:   openai.AudioResponseFormatJSON,
	})
	if err != nil {
		return "", classify(ctx, ep.name, err)
	}
	return resp.Text, nil
}
