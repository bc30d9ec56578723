package cairn_test

import (
	"strings"
	"testing"

	"github.com/cairn-dev/cairn"
)

func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth-1) + `{}` + strings.Repeat(`}`, depth-1)
}

func TestCheckPayload(t *testing.T) {
	tests := []struct {
		name, payload, field string
	}{
		{"OK", `{"a":1,"b":[1,2.5,-3e2,0.1,1.0,"x"],"c":{"d":null}}`, ""},
		{"OKInt64", `{"n":9223372036854775807,"m":-9223372036854775808}`, ""},
		{"OKFloatSpellings", `{"a":1e2,"b":1.50,"c":0.000001,"d":1.7976931348623157e308,"e":1234.5e-2,"f":-0.0}`, ""},
		{"OKDepth64", nested(64), ""},
		{"OKStringsLookLikeNumbers", `{"s":"1e400 [[[[ {{{{"}`, ""},
		{"ErrDepth65", nested(65), "payload" + strings.Repeat(".a", 64)},
		{"ErrDeepArrays", `{"x":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`, "payload.x" + strings.Repeat("[0]", 63)},
		{"ErrHugeExponent", `{"a":{"b":[0,1e400]}}`, "payload.a.b[1]"},
		{"ErrNegativeOverflow", `{"v":-1e309}`, "payload.v"},
		{"ErrUnderflow", `{"v":1e-400}`, "payload.v"},
		{"Err30DigitInteger", `{"id":123456789012345678901234567890}`, "payload.id"},
		{"ErrBeyondInt64", `{"id":9223372036854775808}`, "payload.id"},
		{"ErrTooPrecise", `{"k":"v","p":1.00000000000000000001}`, "payload.p"},
		{"ErrAfterNestedKeys", `{"a":{"x":1,"y":[{"z":2}]},"b":{"c":1e999}}`, "payload.b.c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			field, msg := cairn.CheckPayload([]byte(tt.payload))
			if field != tt.field {
				t.Errorf("CheckPayload = %q (%s), want field %q", field, msg, tt.field)
			}
			if field != "" && msg == "" {
				t.Errorf("no message for %q", field)
			}
		})
	}
}
