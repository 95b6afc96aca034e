package adapter

import "github.com/kommbridge/kommbridge"

// channel is what a channel shows of buttons. The web widget wraps long
// titles and shows any number; the channels Kommunicate bridges cut, and
// count a title's length in UTF-16 code units (an emoji outside the Basic
// Multilingual Plane counts 2): WhatsApp shows 3 reply buttons of 20
// (more become a list of at most 10 rows, titles of 24 and descriptions
// of 72), Messenger and Instagram 13 quick replies of 20.
type channel struct {
	maxButtons   int
	maxTitle     int // 0: the full title
	listOverflow bool
	maxRows      int
	maxRowTitle  int
	maxRowDesc   int
	// plainLinks: Markdown is not rendered; links are written out.
	plainLinks bool
}

var channels = map[string]channel{
	kommbridge.ChannelWeb:       {maxButtons: 1 << 30, maxRows: 1 << 30},
	kommbridge.ChannelWhatsApp:  {maxButtons: 3, maxTitle: 20, listOverflow: true, maxRows: 10, maxRowTitle: 24, maxRowDesc: 72, plainLinks: true},
	kommbridge.ChannelMessenger: {maxButtons: 13, maxTitle: 20, maxRows: 1 << 30, plainLinks: true},
	kommbridge.ChannelInstagram: {maxButtons: 13, maxTitle: 20, maxRows: 1 << 30, plainLinks: true},
}

func channelOf(name string) channel {
	if ch, ok := channels[name]; ok {
		return ch
	}
	return channels[kommbridge.ChannelWeb]
}

// title is a button title as the channel shows it: the full text, or cut
// on a character boundary; a click always sends the full text.
func (ch channel) title(s string) string { return clipTo(s, ch.maxTitle) }

func (ch channel) rowTitle(s string) string { return clipTo(s, ch.maxRowTitle) }

func (ch channel) rowDescription(s string) string { return clipTo(s, ch.maxRowDesc) }

func clipTo(s string, n int) string {
	if n == 0 {
		return s
	}
	return kommbridge.ClipUnits(s, n)
}
