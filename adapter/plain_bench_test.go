package adapter

import (
	"testing"
)

// BenchmarkPlain: a button title of plain ASCII (most of them) takes the
// inert path; the same title through the full rule is what inert saves
// on every quick reply, card and list row.
func BenchmarkPlain(b *testing.B) {
	const title = "Track my order"
	for name, f := range map[string]func(string) string{"inert": plain, "full_rule": neutral} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f(title)
			}
		})
	}
}
