package kommbridge_test

import (
	"testing"

	"github.com/kommbridge/kommbridge"
)

// Card numbers that pass the Luhn check are masked, whatever their
// separators; numbers that do not (orders, tracking codes) stay.
func TestMask(t *testing.T) {
	all := kommbridge.Masks{Cards: true, IBAN: true, Email: true, Phone: true}
	for in, want := range map[string]string{
		"my card is 4242 4242 4242 4242, exp 12/29":         "my card is [card ending 4242], exp 12/29",
		"Visa 4111-1111-1111-1111 and Amex 378282246310005": "Visa [card ending 1111] and Amex [card ending 0005]",
		"Mastercard 5555555555554444.":                      "Mastercard [card ending 4444].",
		"order 4242424242424241 is late":                    "order 4242424242424241 is late", // fails Luhn
		"tracking 1234567890123":                            "tracking 1234567890123",
		"IBAN DE89 3704 0044 0532 0130 00 please":           "IBAN [IBAN ending 3000] please",
		"call 030 1234567 or 0171-2345678":                  "call [phone] or [phone]",
		"write to asha.k@example.com":                       "write to [email]",
		"call +49 30 1234567":                               "call [phone]",
		"order 1234 of 3 items":                             "order 1234 of 3 items",
	} {
		if got := all.Mask(in); got != want {
			t.Errorf("%q:\n got %q\nwant %q", in, got, want)
		}
	}
	if got := (kommbridge.Masks{IBAN: true}).Mask("IBAN DE89 3704 0044 0532 0130 02 (a typo)"); got != "IBAN DE89 3704 0044 0532 0130 02 (a typo)" {
		t.Errorf("an IBAN whose check digits fail: %q", got)
	}
	cards := kommbridge.Masks{Cards: true}
	if got := cards.Mask("asha@example.com 4242424242424242 +49 30 1234567"); got != "asha@example.com [card ending 4242] +49 30 1234567" {
		t.Errorf("cards only: %q", got)
	}
}
