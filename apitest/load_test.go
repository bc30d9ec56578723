package apitest_test

import (
	"testing"

	"github.com/cairn-dev/cairn/apitest"
)

func TestCairnValidatorLoads(t *testing.T) {
	v, err := apitest.CairnValidator(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Operations()) < 10 {
		t.Fatalf("only %d operations: %v", len(v.Operations()), v.Operations())
	}
}
