package memory

import (
	"encoding/binary"
	"unsafe"

	"github.com/kommbridge/kommbridge"
)

// history is a conversation's turns in one buffer, each turn its role's
// and its text's lengths (uvarints) and bytes, oldest first. A full store
// holds up to 100,000 conversations of 20 turns, and every garbage
// collection marks them: a turn kept as two strings is two objects to
// mark, a conversation's buffer is one, with nothing inside to scan
// (BenchmarkHistoryFull).
//
// Bytes once written in the buffer never change: add writes past its end
// (into a new array when the old is full), keep moves its start, and a
// reset starts a new buffer. So the turns list returns can be strings
// over the buffer itself, valid for as long as they are held.
type history struct {
	b []byte
	n int // turns held
}

// add appends turns.
func (h *history) add(turns ...kommbridge.Turn) {
	for _, t := range turns {
		h.b = binary.AppendUvarint(h.b, uint64(len(t.Role)))
		h.b = append(h.b, t.Role...)
		h.b = binary.AppendUvarint(h.b, uint64(len(t.Text)))
		h.b = append(h.b, t.Text...)
		h.n++
	}
}

// keep drops the oldest turns past the last n.
func (h *history) keep(n int) {
	if h.n <= n {
		return
	}
	off := 0
	for range h.n - n {
		_, off = h.field(off)
		_, off = h.field(off)
	}
	h.b = h.b[off:]
	h.n = n
	if n == 0 {
		h.b = nil
	}
}

// list is the turns, oldest first.
func (h *history) list() []kommbridge.Turn {
	out := make([]kommbridge.Turn, h.n)
	off := 0
	for i := range out {
		out[i].Role, off = h.field(off)
		out[i].Text, off = h.field(off)
	}
	return out
}

// field reads the length-prefixed string at off, as a string over the
// buffer (see history), and where the next one starts.
func (h *history) field(off int) (string, int) {
	l, k := binary.Uvarint(h.b[off:])
	off += k
	end := off + int(l)
	if l == 0 {
		return "", end
	}
	return unsafe.String(&h.b[off], int(l)), end
}
