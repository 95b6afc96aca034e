package kommbridge

import (
	"math/big"
	"regexp"
	"strings"
)

// Masks are the kinds of personal data taken out of what a model reads,
// history keeps and logs show (privacy.mask).
type Masks struct{ Cards, IBAN, Email, Phone bool }

var (
	// cardLike is 13 to 19 digits, single spaces or dashes allowed between.
	cardLike = regexp.MustCompile(`\b\d(?:[ -]?\d){12,18}\b`)
	ibanLike = regexp.MustCompile(`\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b`)
	email    = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)
	// phone is an international number (+ and 7 to 15 digits, separators
	// allowed) or a national one with its leading 0: a bare run of digits
	// (an order or tracking number) is none.
	phone = regexp.MustCompile(`\+\d[\d ().-]{5,}\d|\b0\d{1,4}[ /.-]?\d[\d .-]{4,}\d`)
)

// Mask returns s with the kinds of m masked: a card number that passes
// the Luhn check becomes "[card ending 4242]", an IBAN whose check digits
// hold "[IBAN ending 3000]", an email address "[email]", a phone number
// "[phone]". Numbers that fail their checks (an order number, a tracking
// code) stay.
func (m Masks) Mask(s string) string {
	if s == "" || (!m.Cards && !m.IBAN && !m.Email && !m.Phone) {
		return s
	}
	if m.IBAN {
		s = ibanLike.ReplaceAllStringFunc(s, func(x string) string {
			compact := strings.ReplaceAll(x, " ", "")
			if !ibanOK(compact) {
				return x
			}
			return "[IBAN ending " + compact[len(compact)-4:] + "]"
		})
	}
	if m.Cards {
		s = cardLike.ReplaceAllStringFunc(s, func(x string) string {
			d := digits(x)
			if !luhn(d) {
				return x
			}
			return "[card ending " + d[len(d)-4:] + "]"
		})
	}
	if m.Email {
		s = email.ReplaceAllString(s, "[email]")
	}
	if m.Phone {
		s = phone.ReplaceAllStringFunc(s, func(x string) string {
			if n := len(digits(x)); n < 7 || n > 15 {
				return x
			}
			return "[phone]"
		})
	}
	return s
}

func digits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// luhn reports whether a string of digits passes the Luhn check.
func luhn(d string) bool {
	if len(d) < 13 || len(d) > 19 {
		return false
	}
	sum := 0
	for i := range len(d) {
		n := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return sum%10 == 0
}

// ibanOK reports whether an IBAN's check digits hold (ISO 13616: the
// number, country and check digits moved to the end, is 1 modulo 97).
func ibanOK(iban string) bool {
	if len(iban) < 15 || len(iban) > 34 {
		return false
	}
	var b strings.Builder
	for _, r := range iban[4:] + iban[:4] {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r >= 'A' && r <= 'Z':
			b.WriteString(big.NewInt(int64(r - 'A' + 10)).String())
		default:
			return false
		}
	}
	n, ok := new(big.Int).SetString(b.String(), 10)
	return ok && new(big.Int).Mod(n, big.NewInt(97)).Int64() == 1
}
