package adapter

import "github.com/kommbridge/kommbridge"

// channel is what a channel shows of buttons. The web widget wraps long
// titles and shows any number; the channels Kommunicate bridges cut:
// WhatsApp shows 3 reply buttons of 20 characters (more become a list of
// at most 10 rows of 24), Messenger and Instagram 13 quick replies of 20.
type channel struct {
	maxButtons   int
	maxTitle     int // 0: the full title
	listOverflow bool
	maxRows      int
	maxRowTitle  int
}

var channels = map[string]channel{
	kommbridge.ChannelWeb:       {maxButtons: 1 << 30},
	kommbridge.ChannelWhatsApp:  {maxButtons: 3, maxTitle: 20, listOverflow: true, maxRows: 10, maxRowTitle: 24},
	kommbridge.ChannelMessenger: {maxButtons: 13, maxTitle: 20},
	kommbridge.ChannelInstagram: {maxButtons: 13, maxTitle: 20},
}

func channelOf(name string) channel {
	if ch, ok := channels[name]; ok {
		return ch
	}
	return channels[kommbridge.ChannelWeb]
}

// title is a button title as the channel shows it: the full text, or cut
// on a character boundary; a click always sends the full text.
func (ch channel) title(s string) string {
	if ch.maxTitle == 0 {
		return s
	}
	return kommbridge.Clip(s, ch.maxTitle)
}

func (ch channel) listTitle(s string) string {
	if ch.maxRowTitle == 0 {
		return s
	}
	return kommbridge.Clip(s, ch.maxRowTitle)
}
